"""AppTest helpers: open the real app on the temp OPSDECK_HOME and switch pages."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT


def open_page(page: str | None = None, timeout: float = 30) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}").run()
        assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]
