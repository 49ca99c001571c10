"""From the Benchmarks form to a run: SLO rule, request, checks, bodies, engine config, ab command."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.benchmark import (
    build_bodies,
    config_from_request,
    equivalent_ab_command,
    request_from_form,
    slo_targets,
    validate_request,
)
from lib.workspace import BenchmarkRequest, WorkspaceError


def test_each_slo_target_applies_on_its_own() -> None:
    # an error-rate ceiling without a p95 target still judges the run (a run of 100 % errors
    # got no verdict while the form said "SLO max error % 1")
    assert slo_targets(0.0, 1.0) == (None, 0.01)
    assert slo_targets(None, 5.0) == (None, 0.05)
    assert slo_targets(0.0, 0.0) == (None, None)
    assert slo_targets(250.0, 1.0) == (250.0, 0.01)
    assert slo_targets(250.0, 0.0) == (250.0, 0.0)
    assert slo_targets(250.0, None) == (250.0, None)


def test_form_in_request_mode() -> None:
    request = request_from_form(
        url="http://127.0.0.1:8000/score",
        endpoint="bank",
        concurrency=8.0,
        requests=5000.0,
        warmup=50,
        timeout_s=10,
        rows_per_request=3,
        dataset="bank",
        columns=["age", "job"],
        slo_p95_ms=100.0,
        slo_max_error_percent=2.0,
        label="before",
    )
    assert request == BenchmarkRequest(
        url="http://127.0.0.1:8000/score",
        endpoint="bank",
        concurrency=8,
        requests=5000,
        duration_s=None,
        warmup=50,
        timeout_s=10.0,
        rows_per_request=3,
        dataset="bank",
        columns=["age", "job"],
        slo_p95_ms=100.0,
        slo_max_error_rate=0.02,
        label="before",
    )
    assert validate_request(request) == []


def test_form_in_duration_mode_with_custom_url_and_no_dataset() -> None:
    request = request_from_form(
        url=None, endpoint=None, requests=None, duration_s=30, dataset=None, slo_p95_ms=0.0
    )
    assert (request.url, request.endpoint, request.dataset) == ("", "", "")
    assert request.requests is None and request.duration_s == 30.0
    assert request.slo_p95_ms is None and request.slo_max_error_rate is None
    # The duration wins when both are given.
    both = request_from_form(url="http://h/", requests=100, duration_s=5)
    assert both.requests is None and both.duration_s == 5.0


def test_validation_names_each_problem() -> None:
    bad = BenchmarkRequest(
        url="ftp://x", concurrency=0, requests=None, rows_per_request=0, tool="wrk"
    )
    text = " ".join(validate_request(bad))
    for phrase in ("http://", "Concurrency", "request count", "Rows per request", "tool"):
        assert phrase in text
    too_much = BenchmarkRequest(url="http://h/", requests=2_000_000)
    assert validate_request(too_much) == ["At most 1,000,000 requests per run."]
    too_long = BenchmarkRequest(url="http://h/", requests=None, duration_s=7200)
    assert validate_request(too_long) == ["The duration must be between 1 s and 1 h."]


def test_bodies_use_real_rows_and_nulls_for_missing() -> None:
    frame = pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "y", "z"], "y": [0, 1, 0]})
    bodies = build_bodies(frame, ["a", "b"], rows_per_request=2, count=10)
    assert len(bodies) == 10
    assert all(len(b["data"]) == 2 and set(b["data"][0]) == {"a", "b"} for b in bodies)
    rows = [r for b in bodies for r in b["data"]]
    assert {"a": None, "b": "y"} in rows
    with pytest.raises(WorkspaceError, match="lacks the model's column"):
        build_bodies(frame, ["nope"], 1)
    with pytest.raises(WorkspaceError, match="no rows"):
        build_bodies(frame.iloc[:0], ["a"], 1)


def test_engine_config_from_request() -> None:
    request = BenchmarkRequest(
        url="http://h/score",
        endpoint="bank",
        concurrency=4,
        requests=100,
        duration_s=None,
        warmup=5,
        timeout_s=2.0,
        keep_alive=False,
        slo_p95_ms=50.0,
        slo_max_error_rate=0.01,
    )
    config = config_from_request(request, "k3y")
    assert (config.url, config.key, config.concurrency, config.requests) == (
        "http://h/score",
        "k3y",
        4,
        100,
    )
    assert (config.warmup, config.timeout_s, config.keep_alive) == (5, 2.0, False)
    assert (config.slo_p95_ms, config.slo_max_error_rate) == (50.0, 0.01)
    assert config.label == "bank"  # no label: the endpoint names the run
    timed = config_from_request(BenchmarkRequest(url="http://h/", requests=100, duration_s=9), None)
    assert timed.requests is None and timed.duration_s == 9


def test_equivalent_ab_command_masks_the_key() -> None:
    request = request_from_form(url="http://127.0.0.1:5001/score", concurrency=8, requests=5000)
    assert equivalent_ab_command(request, "k3y") == (
        "ab -n 5000 -c 8 -s 10 -l -r -k -p body.json -T application/json "
        "-H 'Authorization: Bearer ***' http://127.0.0.1:5001/score"
    )
    before_a_url = request_from_form(url="", duration_s=30)
    assert equivalent_ab_command(before_a_url, None).endswith(" http://127.0.0.1/score")
    assert equivalent_ab_command(before_a_url, None).startswith("ab -t 30 -c 8 ")
