"""The telemetry writer under abuse: a bounded queue that drops and counts, clipped text."""

from __future__ import annotations

import time

from lib.local.telemetry import RequestRecord, TelemetryWriter, read_requests, read_traces


def _request(name: str = "POST /score", url: str = "http://127.0.0.1:1/score") -> RequestRecord:
    return RequestRecord(time.time(), "op", name, url, 200, 1.0, "ep", "1", 1)


def test_a_full_queue_drops_new_rows_and_says_how_many(tmp_path):
    # A flush interval of an hour: nothing is written until flush() is called.
    writer = TelemetryWriter(tmp_path / "t.db", endpoint="ep", flush_interval=3600, max_queued=5)
    try:
        for _ in range(8):
            writer.record_request(_request())
        for i in range(7):
            writer.record_trace(f"line {i}")
        assert (writer.dropped_requests, writer.dropped_traces) == (3, 2)
        writer.flush()
        assert len(read_requests(tmp_path / "t.db")) == 5
        messages = list(read_traces(tmp_path / "t.db")["Message"])
        assert "telemetry queue full: 3 requests and 2 traces dropped (3 and 2 since start)" in (
            messages
        )
        writer.record_request(_request())  # room again after the flush
        writer.flush()
        assert len(read_requests(tmp_path / "t.db")) == 6
        assert sum("queue full" in m for m in read_traces(tmp_path / "t.db")["Message"]) == 1
    finally:
        writer.close()


def test_caller_chosen_names_urls_and_messages_are_stored_clipped(tmp_path):
    writer = TelemetryWriter(tmp_path / "t.db", endpoint="ep", flush_interval=3600)
    try:
        path = "/" + "a" * 16_000
        writer.record_request(_request(f"GET {path}", f"http://127.0.0.1:1{path}"))
        writer.record_trace("Invalid HTTP request received. " + "x" * 50_000)
        writer.flush()
    finally:
        writer.close()
    row = read_requests(tmp_path / "t.db").iloc[0]
    assert len(row["Name"]) == 256 and row["Name"].startswith("GET /aaa")
    assert len(row["Url"]) == 1024
    assert len(read_traces(tmp_path / "t.db")["Message"].iloc[0]) == 8192
