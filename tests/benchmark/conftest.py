"""Benchmark tests share one hello server per module (started only by tests that ask for it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.benchmark.hello_server import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("hello"))
    yield srv
    srv.stop()
