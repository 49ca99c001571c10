"""/docs in a real browser with every request off this machine refused: Swagger UI renders."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from lib.local.scoring import ScoringSettings, create_app
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.local.scoring.test_connections import _echo_served
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_swagger_ui_renders_offline() -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    app = create_app(_echo_served(), ScoringSettings(endpoint="docs-ep", title="docs-ep"))
    offsite: list[str] = []
    with LiveServer(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()

        def only_local(route) -> None:  # noqa: ANN001
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                offsite.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "docs-ep" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector("text=/score", timeout=30_000)
        browser.close()
    assert offsite == []
