"""Browser tests: a real `streamlit run` on a free port, driven by Debian's headless Chromium."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_dashboard(home: Path) -> tuple[ServerProcess, dict[str, str]]:
    """A fresh `streamlit run app.py` on 127.0.0.1 for the local workspace at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "OPSDECK_"))}
    env.update(OPSDECK_HOME=str(home), OPSDECK_BACKEND="local")
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", "{port}"]
    argv += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    server = ServerProcess(
        argv, home / "streamlit.log", ready_path="/_stcore/health", env=env, timeout=60
    )
    return server, env


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the dashboard on 127.0.0.1 with its own workspace home; yield its URL."""
    server, env = start_dashboard(tmp_path_factory.mktemp("e2e-home"))
    try:
        yield server.url
    finally:
        server.stop(grace_s=20)
        # Endpoint servers outlive the dashboard by design: stop the ones this test made.
        from lib.backend import open_workspace
        from lib.settings import load_settings

        ws = open_workspace(load_settings({**env}))
        for ep in ws.endpoints.list():
            ws.endpoints.delete(ep.name)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):  # noqa: ANN001, ANN201
    """A browser tab at 1,400 × 1,000 px with generous timeouts for a busy 2-core machine."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    # Registering, starting servers and reruns take seconds on a busy 2-core machine.
    expect.set_options(timeout=60_000)
    yield pg
    context.close()


@pytest.fixture
def page(new_page, dashboard):  # noqa: ANN001, ANN201
    return new_page
