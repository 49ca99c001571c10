"""The audit log: append-only JSON lines with a hash chain, safe for concurrent dashboards."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from lib.audit import GENESIS, AuditLog, audited, record
from lib.settings import REPO_ROOT


def test_events_are_appended_and_read_newest_first(tmp_path) -> None:
    log = AuditLog(tmp_path, actor=lambda: "alice")
    log.record("endpoint.keys.reveal", "churn")
    log.record("endpoint.delete", "churn", outcome="failed: busy")
    log.record("compute.resize", "cpu-cluster", "0-4 nodes", actor="bob")
    events = log.read()
    assert [(e.actor, e.action, e.target) for e in events] == [
        ("bob", "compute.resize", "cpu-cluster"),
        ("alice", "endpoint.delete", "churn"),
        ("alice", "endpoint.keys.reveal", "churn"),
    ]
    assert events[1].outcome == "failed: busy" and events[0].detail == "0-4 nodes"
    assert events[-1].prev == GENESIS and log.verify() is None
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert [e.action for e in log.read(limit=1)] == ["compute.resize"]


def test_editing_or_removing_a_past_line_breaks_the_chain(tmp_path) -> None:
    log = AuditLog(tmp_path, actor=lambda: "alice")
    for i in range(4):
        log.record("dataset.delete", f"d{i}")
    lines = log.path.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[1]) | {"actor": "mallory"}
    log.path.write_bytes(lines[0] + (json.dumps(edited) + "\n").encode() + b"".join(lines[2:]))
    assert log.verify() == 3  # line 2 changed: line 3 no longer follows from it
    log.path.write_bytes(lines[0] + b"".join(lines[2:]))
    assert log.verify() == 2


def test_concurrent_dashboards_neither_interleave_nor_lose_lines(tmp_path) -> None:
    script = (
        "import sys; from lib.audit import AuditLog;"
        "log = AuditLog(sys.argv[1], actor=lambda: sys.argv[2]);"
        "[log.record('endpoint.keys.regenerate', f'ep{i}', 'primary') for i in range(50)]"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"user{n}"], cwd=REPO_ROOT)
        for n in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    log = AuditLog(tmp_path)
    assert len(log.read(limit=1000)) == 200
    assert log.verify() is None


def test_audited_records_the_outcome_and_lets_errors_through(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPSDECK_HOME", str(tmp_path))
    with audited("endpoint.delete", "a"):
        pass
    with pytest.raises(RuntimeError), audited("endpoint.delete", "b"):
        raise RuntimeError("server did not stop")
    record("compute.delete", "c")
    events = AuditLog(tmp_path).read()
    assert [(e.target, e.outcome) for e in events] == [
        ("c", "ok"),
        ("b", "failed: server did not stop"),
        ("a", "ok"),
    ]
    assert all(e.actor for e in events)  # the OS account outside a signed-in session


def test_revealing_keys_is_recorded_when_switched_on_only(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("OPSDECK_HOME", str(tmp_path))

    def page() -> None:
        import streamlit as st

        from lib.audit import record_reveal

        st.toggle(
            "Reveal keys",
            key="reveal_x",
            on_change=record_reveal,
            args=("reveal_x", "endpoint.keys.reveal", "x"),
        )

    at = AppTest.from_function(page)
    at.run()
    at.toggle(key="reveal_x").set_value(True).run()
    at.toggle(key="reveal_x").set_value(False).run()
    at.toggle(key="reveal_x").set_value(True).run()
    assert [e.action for e in AuditLog(tmp_path).read()] == ["endpoint.keys.reveal"] * 2
