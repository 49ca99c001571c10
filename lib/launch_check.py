"""Before `make run`: a dashboard reachable from other machines must have sign-in configured.

    python -m lib.launch_check --host 0.0.0.0 [--allowed-hosts "ops.example.com"]

Exits 0 when the dashboard may start (printing notes, if any), 2 with the reason when it may
not. Anyone who reaches the dashboard can reveal and regenerate endpoint keys, deploy, delete
and, on Azure, change compute with the operator's identity, so a bind address other than
loopback needs `[auth]` (st.login) in `.streamlit/secrets.toml`.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from lib.access import is_loopback
from lib.settings import Settings, load_settings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check(host: str, settings: Settings, allowed_hosts: list[str]) -> tuple[bool, list[str]]:
    """(may start, messages): refused when `host` is not loopback and sign-in is not ready."""
    if is_loopback(host):
        return True, []
    sign_in = settings.sign_in
    exposure = (
        f"HOST={host} makes the dashboard reachable from other machines, and anyone who reaches "
        "it can reveal and regenerate endpoint keys, deploy, delete and (on Azure) change compute "
        "with your identity."
    )
    if sign_in is None:
        return False, [
            f"Refusing to start: {exposure} Configure sign-in first: an [auth] section in "
            ".streamlit/secrets.toml (see the README, 'Sign-in and exposure'), "
            "or run on HOST=127.0.0.1."
        ]
    if not sign_in.ready:
        return False, [
            f"Refusing to start: {exposure} The [auth] section of .streamlit/secrets.toml is "
            "incomplete: " + "; ".join(sign_in.problems) + "."
        ]
    notes = []
    extra = [h for h in allowed_hosts if h and h not in LOOPBACK_HOSTS]
    if not extra:
        notes.append(
            "Note: browsers on other machines must open the dashboard under a name in "
            "server.allowedHosts; give it with ALLOWED_HOSTS=your.host.name (the WebSocket is "
            "refused for any other Host)."
        )
    redirect = urlsplit(_redirect_uri()).hostname
    if redirect and extra and redirect not in extra:
        notes.append(
            f"Note: [auth] redirect_uri goes to {redirect}, which is not in ALLOWED_HOSTS "
            f"({' '.join(extra)}): sign-in would come back to a refused name."
        )
    return True, notes


def _redirect_uri() -> str:
    from lib.settings import REPO_ROOT, _read_toml

    auth = _read_toml(REPO_ROOT / ".streamlit" / "secrets.toml").get("auth")
    return str(auth.get("redirect_uri") or "") if isinstance(auth, dict) else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lib.launch_check", description=__doc__.split("\n")[0]
    )
    p.add_argument("--host", required=True, help="the address the dashboard binds to")
    p.add_argument("--allowed-hosts", default="", help="extra host names, space-separated")
    args = p.parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as exc:
        sys.stderr.write(f"Refusing to start: the settings are invalid: {exc}\n")
        return 2
    ok, messages = check(args.host, settings, args.allowed_hosts.split())
    for message in messages:
        (sys.stdout if ok else sys.stderr).write(message + "\n")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
