"""Who may drive the dashboard: the origin check, loopback binds, sign-in with st.login."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import lib.access
from lib.access import is_loopback, origin_refusal
from lib.settings import SignIn
from tests.conftest import REPO_ROOT
from tests.pages.conftest import open_page


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # a program, not a page: it passed the Host allow-list already
        ({"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"}, False),
        ({"host": "localhost:8501", "origin": "http://LOCALHOST:8501"}, False),
        ({"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:9999"}, True),  # another port
        ({"Host": "127.0.0.1:8501", "Origin": "http://evil.example"}, True),
        ({"Host": "127.0.0.1:8501", "Origin": "null"}, True),
        ({"Origin": "http://127.0.0.1:8501"}, True),
    ],
)
def test_only_the_dashboards_own_origin_may_drive_it(headers, refused) -> None:
    assert (origin_refusal(headers) is not None) is refused


def test_trusted_origins_are_those_streamlit_is_told_about() -> None:
    headers = {"Host": "127.0.0.1:8501", "Origin": "https://ops.example.com"}
    assert origin_refusal(headers, ["https://ops.example.com/"]) is None
    assert "another site (https://ops.example.com)" in origin_refusal(headers, ["http://x"])


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("ops.example.com", False),
    ],
)
def test_loopback_binds(host, loopback) -> None:
    assert is_loopback(host) is loopback


SIGN_IN = SignIn(("microsoft",))


def test_with_sign_in_configured_nobody_signed_in_sees_no_page(local_workspace, monkeypatch):
    monkeypatch.setattr("lib.settings.sign_in_from_secrets", lambda secrets: SIGN_IN)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=30)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == ["Sign in with Microsoft"]
    assert not any("Workspace" in m.value for m in at.sidebar.markdown)

    at.user = {"is_logged_in": True, "email": "ada@example.com", "name": "Ada"}
    at.run()
    assert not at.exception, at.exception
    assert any("ada@example.com" in c.value for c in at.sidebar.caption)
    assert any(b.label == "Sign out" for b in at.sidebar.button)


def test_incomplete_sign_in_refuses_to_run_and_says_why(local_workspace, monkeypatch):
    broken = SignIn(
        ("default",), ("[auth] cookie_secret is missing or shorter than 32 characters",)
    )
    monkeypatch.setattr("lib.settings.sign_in_from_secrets", lambda secrets: broken)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=30)
    at.run()
    assert any("cookie_secret" in e.value for e in at.error)
    assert not at.button


def test_a_session_opened_from_another_origin_runs_no_page(local_workspace, monkeypatch):
    monkeypatch.setattr(
        lib.access,
        "_request_headers",
        lambda: {"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:9999"},
    )
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=30)
    at.run()
    assert any("opened from another site" in e.value for e in at.error)
    assert not at.sidebar.markdown and not at.button
    # Its own origin: the dashboard as usual.
    monkeypatch.setattr(
        lib.access,
        "_request_headers",
        lambda: {"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"},
    )
    at = open_page()
    assert any("Workspace" in m.value for m in at.sidebar.markdown)
