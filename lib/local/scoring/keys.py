"""Endpoint keys: the keys file (two keys, mode 600) and the constant-time `Bearer` check."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import tempfile
from pathlib import Path

log = logging.getLogger("opsdeck.scoring")


def write_keys_file(
    path: Path, primary: str | None = None, secondary: str | None = None
) -> tuple[str, str]:
    """Write (or regenerate) the two endpoint keys atomically with mode 600; return them."""
    primary = primary or secrets.token_urlsafe(32)
    secondary = secondary or secrets.token_urlsafe(32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"primary_key": primary, "secondary_key": secondary}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return primary, secondary


def read_keys_file(path: Path) -> tuple[str, str]:
    """Read `{"primary_key": ..., "secondary_key": ...}` (also accepts `primary`/`secondary`)."""
    data = json.loads(Path(path).read_text())
    primary = data.get("primary_key", data.get("primary")) or ""
    secondary = data.get("secondary_key", data.get("secondary")) or ""
    if not isinstance(primary, str) or not isinstance(secondary, str) or not (primary or secondary):
        raise ValueError(f"keys file {path} holds no usable keys")
    return primary, secondary


class KeyStore:
    """The endpoint's keys, re-read whenever the keys file changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._keys: tuple[bytes, ...] = ()
        self._refresh(initial=True)

    def _refresh(self, initial: bool = False) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            if initial:
                raise
            # Keys are replaced by an atomic rename, so a missing file means the endpoint was
            # deleted: its keys must stop working everywhere, even in a server left running.
            if self._keys:
                log.warning("keys file %s is gone; rejecting every request", self.path)
            self._keys, self._stamp = (), None
            return
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp == self._stamp:
            return
        try:
            keys = read_keys_file(self.path)
        except (OSError, ValueError) as exc:
            if initial:
                raise
            log.warning(
                "keys file %s unreadable (%s); rejecting every request",
                self.path,
                type(exc).__name__,
            )
            self._keys, self._stamp = (), None
            return
        self._keys = tuple(k.encode() for k in keys if k)
        self._stamp = stamp
        if not initial:
            log.info("endpoint keys reloaded from %s", self.path)

    def check(self, authorization: bytes | None) -> bool:
        """True when the header is `Bearer <one of the keys>` (constant-time comparison)."""
        self._refresh()
        if not authorization or authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip()
        ok = False
        for key in self._keys:  # compare against every key so timing reveals nothing
            ok |= hmac.compare_digest(token, key)
        return ok and bool(token)
