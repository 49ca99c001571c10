"""Big uploads register in a process of their own; their state lives in files, not the page."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from lib import background_upload as bg
from lib.backend import open_workspace
from lib.settings import load_settings
from tests.support.waiting import wait_for

CSV = b"age,job,y\n" + b"".join(b"%d,admin,no\n%d,?,yes\n" % (i, i + 1) for i in range(500))


def _finished(home: Path, upload_id: str) -> bg.BackgroundUpload:
    return wait_for(
        lambda: (u := bg.get(home, upload_id)) and u.state != bg.RUNNING and u,
        120,
        what="the background upload",
    )


def test_a_file_registers_out_of_process_and_says_what_it_read(hermetic_env: Path) -> None:
    home = hermetic_env
    # Two ages were not given: the column stays text, and the result says why.
    refused = CSV.replace(b"\n10,admin", b"\nrefused,admin").replace(
        b"\n20,admin", b"\nrefused,admin"
    )
    titled = b"Staff list, May\n\n" + refused
    started = bg.start(home, "staff", titled, "staff.csv", "from HR", ["", "?"])
    assert started.state == bg.RUNNING and started.size_bytes == len(titled)
    process = json.loads((home / bg.STAGING / started.id / bg.REQUEST).read_text())["process"]
    assert process["pid"] != os.getpid()
    done = _finished(home, started.id)
    assert done.state == bg.DONE, done.result
    assert (done.result["name"], done.result["version"], done.result["rows"]) == ("staff", 1, 1000)
    assert any("title" in n for n in done.result["notes"]), done.result["notes"]
    assert '**job**: "?" (500)' in done.result["read_as_missing"]
    assert done.result["reread"] == [
        'age is numbers but for "refused" (2), so it was read as text: add refused to the '
        "missing-value tokens and register the file again to read it as numbers."
    ]
    datasets = open_workspace(load_settings()).datasets
    assert datasets.get("staff", 1).description == "from HR"
    assert datasets.load("staff", 1)["job"].isna().sum() == 500
    # The staged copy is gone once registered; the record stays until dismissed.
    assert not (home / bg.STAGING / started.id / bg.DATA).exists()
    assert [u.id for u in bg.listing(home)] == [started.id]
    bg.dismiss(home, started.id)
    assert bg.listing(home) == [] and bg.get(home, started.id) is None


def test_a_broken_file_fails_with_the_readers_message(hermetic_env: Path) -> None:
    home = hermetic_env
    failed = _finished(home, bg.start(home, "bad", b"a,b\n", "bad.csv").id)
    assert failed.state == bg.FAILED
    assert "no data rows" in failed.result["error"]
    assert open_workspace(load_settings()).datasets.list() == []


def test_a_killed_registration_is_reported_stopped_and_stores_nothing(hermetic_env: Path) -> None:
    home = hermetic_env
    big = b"x,y\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(2_000_000))
    started = bg.start(home, "big", big, "big.csv")
    request = json.loads((home / bg.STAGING / started.id / bg.REQUEST).read_text())
    os.killpg(request["process"]["pid"], signal.SIGKILL)
    stopped = _finished(home, started.id)
    assert stopped.state == bg.STOPPED
    assert open_workspace(load_settings()).datasets.list() == []
    # Dismissing removes the staged bytes as well.
    bg.dismiss(home, started.id)
    assert not (home / bg.STAGING / started.id).exists()


def test_a_reused_pid_is_not_taken_for_the_registering_process(hermetic_env: Path) -> None:
    """After a reboot another process may hold the recorded PID: its start time tells."""
    home = hermetic_env
    folder = home / bg.STAGING / "20260101-000000-deadbeef"
    folder.mkdir(parents=True)
    me = psutil.Process(os.getpid())
    request = {
        "name": "old",
        "file_name": "old.csv",
        "size_bytes": 10,
        "started": time.time() - 5,
        "process": {"pid": me.pid, "create_time": me.create_time() - 3600},
    }
    (folder / bg.REQUEST).write_text(json.dumps(request))
    assert bg.get(home, folder.name).state == bg.STOPPED
    request["process"]["create_time"] = me.create_time()
    (folder / bg.REQUEST).write_text(json.dumps(request))
    assert bg.get(home, folder.name).state == bg.RUNNING
    bg.dismiss(home, folder.name)  # a running one is left alone
    assert bg.get(home, folder.name) is not None


def test_an_upload_that_cannot_start_leaves_nothing_staged(hermetic_env: Path, monkeypatch) -> None:
    def no_process(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(bg.subprocess, "Popen", no_process)
    with pytest.raises(OSError, match="Resource temporarily unavailable"):
        bg.start(hermetic_env, "x", CSV, "x.csv")
    assert list((hermetic_env / bg.STAGING).iterdir()) == []
    assert bg.listing(hermetic_env) == []


def test_two_uploads_of_one_name_at_once_become_two_versions(hermetic_env: Path) -> None:
    home = hermetic_env
    first = bg.start(home, "staff", CSV, "a.csv", "", ["", "?"])
    second = bg.start(home, "staff", CSV + b"999,retired,no\n", "b.csv", "", ["", "?"])
    done = [_finished(home, u.id) for u in (first, second)]
    assert [d.state for d in done] == [bg.DONE, bg.DONE], [d.result for d in done]
    assert sorted(d.result["version"] for d in done) == [1, 2]
    datasets = open_workspace(load_settings()).datasets
    rows = {d.result["version"]: d.result["rows"] for d in done}
    for version, count in rows.items():
        assert len(datasets.load("staff", version)) == count
    assert sorted(rows.values()) == [1000, 1001]
