"""Schema-based fuzzing of a live scoring server: no input may produce a 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        found = shutil.which("schemathesis")
        assert found, "schemathesis is a dev dependency (requirements-dev.txt)"
        exe = Path(found)
    return [str(exe)]


@pytest.mark.parametrize("version", [2, 3])
def test_fuzzing_the_swagger_finds_no_server_error(fast_endpoint, tmp_path, version) -> None:
    spec_url = f"{fast_endpoint.url}/swagger.json?version={version}"
    assert requests.get(spec_url, timeout=5).status_code == 200
    proc = subprocess.run(
        [
            *_schemathesis(),
            "run",
            spec_url,
            "--url",
            fast_endpoint.url,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--header",
            f"Authorization: Bearer {fast_endpoint.primary}",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts, output[-2000:]
    generated, passed = map(int, counts.groups())
    assert generated >= 50 and passed == generated
    assert re.search(r"Tested: [2-9]", output)
    # The server is still up afterwards.
    assert requests.get(f"{fast_endpoint.url}/", timeout=5).text.strip('"') == "Healthy"
