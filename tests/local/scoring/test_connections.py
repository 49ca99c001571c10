"""The scoring server under abuse: idle and half-sent requests, connection floods, its log."""

from __future__ import annotations

import logging
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lib.local.scoring import ScoringSettings, create_app, write_keys_file
from lib.local.scoring.connections import connection_cap, guarded_protocol
from lib.local.scoring.payloads import Column
from lib.local.scoring.served_model import ServedModel
from tests.local.scoring_models import records
from tests.support.servers import LiveServer, ServerProcess
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
HALF_REQUEST = b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"


def _echo_served() -> ServedModel:
    return ServedModel(
        pyfunc=None,
        columns=[Column("x", "number")],
        path="fast",
        check_message="",
        task="regression",
        _fast_predict=lambda recs: [r["x"] for r in recs],
    )


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _open(port: int, n: int, payload: bytes = b"", timeout: float = 5) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if payload:
            s.sendall(payload)
        socks.append(s)
    return socks


class _Sink:
    def __init__(self) -> None:
        self.records: list = []

    def record_request(self, record) -> None:
        self.records.append(record)


def test_a_request_not_received_in_time_is_closed_and_a_whole_one_is_answered():
    sink = _Sink()
    app = create_app(_echo_served(), ScoringSettings(endpoint="slow", telemetry=sink))
    with LiveServer(app, http=guarded_protocol(receipt_timeout=0.5)) as server:
        silent, half = _open(server.port, 1)[0], _open(server.port, 1, HALF_REQUEST)[0]
        body = b'{"data": [{"x": 1}]'  # one byte short of Content-Length 20: the body stalls
        stalled = _open(server.port, 1, HALF_REQUEST.replace(b"10", b"20") + b"\r\n" + body)[0]
        for s in (silent, half):
            s.settimeout(0.05)
            wait_for(lambda s=s: _closed_by_server(s), timeout=10, what="connection closed")
        # The stalled body is the server's timeout: answered 408 before closing, and logged so
        # (not as 499, a client that hung up).
        answer = b""
        while chunk := stalled.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        assert answer.endswith(b'{"message": "Request body not received in time"}')
        wait_for(lambda: sink.records or None, timeout=10, what="the request recorded")
        assert [r.result_code for r in sink.records] == [408]
        ok = requests.post(server.url + "/score", json={"data": [{"x": 2.5}]}, timeout=5)
        assert ok.json() == {"result": [2.5]}
        for s in (silent, half, stalled):
            s.close()


def test_answers_are_sent_at_once_not_held_for_a_delayed_ack():
    """With Nagle's algorithm on, every answer on a kept-alive connection waited ~40 ms for the
    client's delayed ACK (a benchmark with keep-alive read p50 44 ms of a 1 ms server)."""
    from lib.local.scoring.serve import bind

    nodelay: list[int] = []

    class Recording(guarded_protocol()):  # type: ignore[misc, valid-type]
        def connection_made(self, transport) -> None:  # noqa: ANN001
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    app = create_app(_echo_served(), ScoringSettings(endpoint="nodelay"))
    with LiveServer(app, http=Recording) as server, requests.Session() as session:
        for x in (1.0, 2.0, 3.0):
            answer = session.post(server.url + "/score", json={"data": [{"x": x}]}, timeout=5)
            assert answer.json() == {"result": [x]}
    assert nodelay == [1]  # one kept-alive connection, Nagle off
    listener = bind("127.0.0.1", 0)  # the endpoint's own socket: asyncio sets it on accept
    try:
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()


def test_past_the_cap_idle_connections_make_room_for_a_real_client():
    app = create_app(_echo_served(), ScoringSettings(endpoint="cap"))
    cap = 40
    with LiveServer(app, http=guarded_protocol(receipt_timeout=60, max_connections=cap)) as srv:
        flood = _open(srv.port, 200, HALF_REQUEST)
        open_now = srv.server.server_state.connections
        wait_for(lambda: len(open_now) <= cap, timeout=10, what="connections down to the cap")
        with requests.Session() as client:
            for i in range(20):
                r = client.post(srv.url + "/score", json={"data": [{"x": i}]}, timeout=5)
                assert r.json() == {"result": [i]}
        assert len(open_now) <= cap
        for s in flood:
            s.close()


def test_the_cap_stays_within_the_descriptor_limit():
    assert connection_cap(2048, 1024) == 1024 - 128
    assert connection_cap(2048, 1024, backlog=2048) == 64
    assert connection_cap(2048, 8192, backlog=2048) == 2048
    assert connection_cap(4096, 4096, backlog=2048) == 4096 - 128 - 2048
    assert connection_cap(100, 65536) == 100


def _raise_own_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@pytest.mark.slow
def test_5000_idle_half_open_connections_do_not_stop_a_keyed_client(tmp_path, models):
    limit = _raise_own_fd_limit(5000 + 512)
    n = min(5000, limit - 512)
    assert n == 5000, f"this machine lets the test open only {n} connections"
    keys = tmp_path / "keys.json"
    primary, _ = write_keys_file(keys)
    # The common default: a soft limit of 1024 descriptors (the flood outnumbers them), which
    # the server may raise up to its hard limit.
    argv = [
        "prlimit", "--nofile=1024:8192", "--",
        sys.executable, "-m", "lib.local.scoring.serve", "--model-uri", models.fast_uri,
        "--tracking-uri", models.tracking_uri, "--port", "{port}", "--keys-file", str(keys),
        "--telemetry-db", str(tmp_path / "t.db"), "--endpoint", "flood",
    ]  # fmt: skip
    with ServerProcess(argv, tmp_path / "server.log", timeout=120) as server:
        started = time.monotonic()
        try:
            # A full accept queue drops SYNs: the client retries after 1 s, 3 s, ...
            flood = _open(server.port, n, HALF_REQUEST, timeout=15)
        except OSError as exc:
            raise AssertionError(f"{exc}; server log:\n{server.log()[-3000:]}") from exc
        opened_s = time.monotonic() - started
        body = {"data": records(models.frame, 1)}
        headers = {"Authorization": f"Bearer {primary}"}
        codes, latencies = [], []
        try:
            for _ in range(20):
                t0 = time.monotonic()
                try:
                    r = requests.post(server.url + "/score", json=body, headers=headers, timeout=10)
                except requests.RequestException as exc:
                    raise AssertionError(
                        f"{codes} then {exc!r}; server log:\n{server.log()[-3000:]}"
                    ) from exc
                latencies.append(time.monotonic() - t0)
                codes.append(r.status_code)
        finally:
            for s in flood:
                s.close()
        print(
            f"{n} half-open connections opened in {opened_s:.1f} s; keyed client: {codes.count(200)}"
            f"/20 answered 200, slowest {max(latencies) * 1000:.0f} ms"
        )
        assert codes == [200] * 20
        assert "Traceback" not in server.log()


def test_server_log_rotates_past_its_size(tmp_path):
    log_path = tmp_path / "server.log"
    script = (
        "import logging; from lib.local.scoring.server_log import RotatingStderrHandler as H;"
        "h = H(20_000); log = logging.getLogger('t'); log.addHandler(h);"
        "[log.warning('Invalid HTTP request received. %05d ' + 'x' * 80, i) for i in range(3000)];"
        "print('rotations', h.rotations)"
    )
    with log_path.open("ab") as out:
        subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, stdout=out, stderr=out, check=True, timeout=60
        )
    text = log_path.read_text()
    backup = tmp_path / "server.log.1"
    assert log_path.stat().st_size < 20_000 + 200 and backup.stat().st_size > 20_000
    assert "02999" in text and "rotations" in text  # the newest lines are in the live file
    assert int(text.rsplit("rotations", 1)[1]) >= 10  # 300 KB written in 20 KB files


def test_telemetry_keeps_attacker_chosen_paths_short(fast_endpoint):
    from lib.appinsights import TelemetryQuery
    from lib.local.telemetry import read_requests

    path = "/" + "a" * 16_000
    r = requests.get(fast_endpoint.url + path, timeout=5)
    assert r.status_code == 404
    r = requests.post(fast_endpoint.url + "/score?" + "q" * 15_000, json={}, timeout=5)
    assert r.status_code == 401

    def stored():
        df = read_requests(fast_endpoint.telemetry_db, TelemetryQuery(fast_endpoint.name))
        df = df[df["ResultCode"].isin(["404", "401"]) & (df["Url"].str.len() > 900)]
        return (df,) if len(df) >= 2 else None

    (df,) = wait_for(stored, timeout=10, what="the 404 and the 401 stored")
    assert df["Name"].str.len().max() <= 256 and df["Url"].str.len().max() <= 1024


def test_the_guarded_protocol_logs_summaries_not_one_line_per_connection(caplog):
    app = create_app(_echo_served(), ScoringSettings(endpoint="quiet"))
    with caplog.at_level(logging.WARNING, logger="opsdeck.scoring"):
        with LiveServer(app, http=guarded_protocol(receipt_timeout=0.2)) as server:
            socks = _open(server.port, 30)
            for s in socks:
                s.settimeout(0.05)
                wait_for(lambda s=s: _closed_by_server(s), timeout=10, what="closed")
                s.close()
    lines = [r for r in caplog.records if "connections closed" in r.getMessage()]
    assert len(lines) <= 1
