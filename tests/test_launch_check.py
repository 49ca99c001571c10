"""`make run` refuses a non-loopback HOST without sign-in, and says why."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib.launch_check import check
from lib.settings import REPO_ROOT, SignIn, load_settings

READY = SignIn(("microsoft",))


def _settings(tmp_path: Path, sign_in: SignIn | None):
    from dataclasses import replace

    return replace(load_settings({}, root=tmp_path), sign_in=sign_in)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_starts_without_sign_in(tmp_path, host) -> None:
    assert check(host, _settings(tmp_path, None), []) == (True, [])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "ops.example.com"])
def test_any_other_bind_needs_sign_in_and_says_why(tmp_path, host) -> None:
    ok, messages = check(host, _settings(tmp_path, None), [])
    assert not ok
    assert f"HOST={host}" in messages[0] and "[auth]" in messages[0]
    assert "reveal and regenerate endpoint keys" in messages[0]
    broken = SignIn(("default",), ("[auth] redirect_uri is missing",))
    ok, messages = check(host, _settings(tmp_path, broken), [])
    assert not ok and "redirect_uri is missing" in messages[0]


def test_with_sign_in_it_starts_and_notes_the_host_names(tmp_path) -> None:
    ok, notes = check("0.0.0.0", _settings(tmp_path, READY), [])
    assert ok and "ALLOWED_HOSTS" in notes[0]
    assert check("0.0.0.0", _settings(tmp_path, READY), ["ops.example.com"]) == (True, [])


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_with_a_public_host_stops_before_streamlit(tmp_path) -> None:
    if (REPO_ROOT / ".streamlit" / "secrets.toml").exists():
        pytest.skip("this checkout has a secrets.toml: the refusal depends on its [auth]")
    # `-o`: never (re)install for this; PY: the interpreter running the tests.
    proc = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.runtime", "run", "HOST=0.0.0.0"]
        + ["PORT=1", f"PY={sys.executable}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Refusing to start: HOST=0.0.0.0" in proc.stderr
    assert "streamlit run" not in proc.stdout
