"""The audit log: who revealed or regenerated keys, deleted, deployed or changed compute, when.

One JSON line per event in `<workspace home>/audit.jsonl` (owner-only). Appends take an
exclusive lock and are one `write` of a whole line on an O_APPEND descriptor, then fsync'd, so
concurrent dashboards never interleave or lose a line. Each line carries the SHA-256 of the
line before it: editing or removing a past line breaks the chain, which `verify` reports.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

FILE_NAME = "audit.jsonl"
GENESIS = "0" * 64
# Reading the tail to find the previous line's hash: lines are far shorter than this.
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class AuditEvent:
    """One audited action; `outcome` is "ok" or what went wrong."""

    at: str  # ISO 8601, UTC
    actor: str
    action: str  # e.g. "endpoint.delete", "endpoint.keys.reveal", "compute.resize"
    target: str
    detail: str = ""
    outcome: str = "ok"
    prev: str = GENESIS


def _line(event: AuditEvent) -> bytes:
    return (json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _digest(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_line(fd: int) -> bytes | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    start = max(0, size - _TAIL_BYTES)
    data = os.pread(fd, size - start, start)
    lines = data.rstrip(b"\n").split(b"\n")
    return lines[-1] if lines and lines[-1] else None


def _default_actor() -> str:
    from lib.access import current_user

    return current_user()


class AuditLog:
    """The append-only audit log of one workspace home."""

    def __init__(self, home: Path | str, actor: Callable[[], str] = _default_actor) -> None:
        self.path = Path(home) / FILE_NAME
        self.actor = actor

    def record(
        self, action: str, target: str, detail: str = "", outcome: str = "ok", actor: str = ""
    ) -> AuditEvent:
        """Append one event (the actor defaults to who is acting now) and return it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(self.path, "rb") as reader:
                last = _last_line(reader.fileno())
            event = AuditEvent(
                at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                actor=actor or self.actor(),
                action=action,
                target=target,
                detail=detail,
                outcome=outcome,
                prev=_digest(last) if last else GENESIS,
            )
            os.write(fd, _line(event))
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        return event

    def read(self, limit: int = 1000) -> list[AuditEvent]:
        """The newest `limit` events, newest first."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            lines = f.read().splitlines()
        events = []
        for line in reversed(lines):
            if len(events) >= limit:
                break
            try:
                events.append(AuditEvent(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return events

    def verify(self) -> int | None:
        """The 1-based number of the first line that breaks the hash chain, or None if intact."""
        if not self.path.exists():
            return None
        prev = GENESIS
        with self.path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    if json.loads(line)["prev"] != prev:
                        return number
                except (ValueError, KeyError, TypeError):
                    return number
                prev = _digest(line)
        return None


def audit_log(home: Path | str | None = None) -> AuditLog:
    """The audit log of `home`, by default the configured workspace home."""
    if home is None:
        from lib.settings import load_settings

        home = load_settings().home
    return AuditLog(home)


def record(action: str, target: str, detail: str = "", outcome: str = "ok") -> AuditEvent:
    """Append an event to the configured workspace's audit log, as whoever is acting now."""
    return audit_log().record(action, target, detail, outcome)


@contextmanager
def audited(action: str, target: str, detail: str = "") -> Iterator[None]:
    """Record the action in the block when it ends: "ok", or "failed: ..." and re-raised."""
    try:
        yield
    except Exception as exc:
        record(action, target, detail, outcome=f"failed: {exc}"[:500])
        raise
    record(action, target, detail)


def record_reveal(state_key: str, action: str, target: str) -> None:
    """An `on_change` callback for a reveal toggle: records only the switch to revealed."""
    import streamlit as st

    if st.session_state.get(state_key):
        record(action, target)
