"""Who may drive the dashboard: the same-origin check, sign-in, and who is acting.

Streamlit refuses WebSocket connections whose `Host` is not in `server.allowedHosts` and, with
CORS on, those from other origins, except that it trusts every port of localhost and of this
machine's addresses. A page another local user serves on 127.0.0.1:9999 could therefore drive
the dashboard from the operator's browser; `gate` closes that gap by running no page for a
session whose `Origin` is not the dashboard's own (or one in `server.corsAllowedOrigins`).

Sign-in is Streamlit's `st.login` (OIDC, e.g. Microsoft Entra ID) when `[auth]` is configured
in `.streamlit/secrets.toml`: every page then needs a signed-in user.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from lib.settings import Settings

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True when a bind address or host name reaches this machine only (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def origin_refusal(headers: Mapping[str, str], trusted: Iterable[str] = ()) -> str | None:
    """Why a session must not drive the dashboard, or None: its Origin is not its own Host.

    A request without `Origin` comes from a program, not from a page in a browser, and is
    allowed (it had to pass the Host allow-list already).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    origin, host = lower.get("origin"), lower.get("host")
    if not origin:
        return None
    if host and urlsplit(origin).netloc.lower() == host.lower():
        return None
    if _origin(origin) in {_origin(t) for t in trusted if t}:
        return None
    return (
        f"This dashboard was opened from another site ({origin}), which may not drive it. "
        "Open it at its own address, or add that origin to server.corsAllowedOrigins."
    )


def os_user() -> str:
    """The operating-system account running the dashboard."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def current_user() -> str:
    """Who is acting: the signed-in user's e-mail (or name), else the OS account."""
    try:
        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx() is not None and st.user.get("is_logged_in"):
            name = st.user.get("email") or st.user.get("name") or st.user.get("sub")
            if name:
                return str(name)
    except (ImportError, AttributeError, KeyError):
        pass
    return os_user()


def _request_headers() -> Mapping[str, str]:
    import streamlit as st

    try:
        return dict(st.context.headers)
    except (AttributeError, RuntimeError):
        return {}


def gate(settings: Settings) -> None:
    """Stop the script unless this session may drive the dashboard; sidebar shows who is in."""
    import streamlit as st
    from streamlit import config

    refusal = origin_refusal(_request_headers(), config.get_option("server.corsAllowedOrigins"))
    if refusal:
        st.error(refusal, icon=":material/block:")
        st.stop()
    sign_in = settings.sign_in
    if sign_in is None:
        return
    if not sign_in.ready:
        st.error(
            "Sign-in is configured in .streamlit/secrets.toml but incomplete: "
            + "; ".join(sign_in.problems),
            icon=":material/lock:",
        )
        st.stop()
    if not st.user.get("is_logged_in"):
        st.title("opsdeck")
        st.write("Sign in to use this dashboard.")
        for provider in sign_in.providers:
            label = "Sign in" if provider == "default" else f"Sign in with {provider.title()}"
            args = () if provider == "default" else (provider,)
            st.button(label, key=f"access_login_{provider}", on_click=st.login, args=args)
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{current_user()}**")
        st.button("Sign out", key="access_logout", on_click=st.logout, icon=":material/logout:")
