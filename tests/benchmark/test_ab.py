"""ab command line, parser on real captured ab outputs, and a real ab run when ab is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.benchmark import (
    AbError,
    BenchmarkConfig,
    ab_available,
    ab_command,
    display_command,
    parse_ab_csv,
    parse_ab_gnuplot,
    parse_ab_output,
    result_from_ab,
    run_ab,
)
from tests.benchmark.hello_server import Server

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / f"ab_output_{name}.txt").read_text()


def test_command_mirrors_config_and_masks_key() -> None:
    config = BenchmarkConfig(
        url="http://127.0.0.1:5001", key="k3y", concurrency=8, requests=5000, timeout_s=2.5
    )
    cmd = ab_command(
        config, "body.json", csv_path="p.csv", gnuplot_path="g.tsv", ab_path="/usr/bin/ab"
    )
    assert cmd[:5] == ["/usr/bin/ab", "-n", "5000", "-c", "8"]
    assert cmd[cmd.index("-s") + 1] == "3"
    assert "-k" in cmd and "-l" in cmd and "-r" in cmd
    assert (
        cmd[cmd.index("-p") + 1] == "body.json" and cmd[cmd.index("-T") + 1] == "application/json"
    )
    assert "Authorization: Bearer k3y" in cmd
    assert cmd[-1] == "http://127.0.0.1:5001/"  # ab needs a path
    shown = display_command(cmd)
    assert "k3y" not in shown and "'Authorization: Bearer ***'" in shown
    plain = ab_command(
        BenchmarkConfig(
            url="http://h/x", method="GET", keep_alive=False, duration_s=3, requests=None
        ),
        None,
    )
    assert (
        "-k" not in plain and "-p" not in plain and plain[1:3] == ["-t", "3"] and "-n" not in plain
    )


def test_parse_keepalive_post_output() -> None:
    out = parse_ab_output(fixture("post_c8_k_h11"))
    assert out["concurrency"] == 8 and out["complete"] == 2000 and out["failed"] == 0
    assert out["requests_per_second"] == 2256.48
    assert out["time_per_request_ms"] == 3.545 and out["time_per_request_all_ms"] == 0.443
    assert out["keep_alive_requests"] == 0  # uvicorn's h11 server ignores HTTP/1.0 keep-alive
    assert out["body_sent"] == 472000
    assert out["percentiles_ms"] == {
        50: 2,
        66: 3,
        75: 5,
        80: 6,
        90: 8,
        95: 10,
        98: 12,
        99: 13,
        100: 13,
    }
    assert out["connection_times_ms"]["total"] == {
        "min": 1,
        "mean": 4,
        "sd": 2.9,
        "median": 2,
        "max": 13,
    }
    assert out["server_software"] == "uvicorn" and out["document_path"] == "/auth"


def test_parse_non_2xx_and_failures() -> None:
    non2xx = parse_ab_output(fixture("non2xx"))
    assert non2xx["non_2xx"] == 500 and non2xx["failed"] == 0
    killed = parse_ab_output(fixture("server_killed"))
    assert killed["failed"] == 41270
    assert killed["failed_breakdown"] == {
        "connect": 0,
        "receive": 16232,
        "length": 16234,
        "exceptions": 8804,
    }
    assert parse_ab_output(fixture("timelimit"))["complete"] == 2985


def test_parse_aborted_run_raises() -> None:
    with pytest.raises(AbError, match="apr_pollset_poll"):
        parse_ab_output(fixture("timeout_abort"))


def test_parse_csv_and_gnuplot() -> None:
    csv = parse_ab_csv(fixture("percentiles_csv"))
    assert len(csv) == 101 and csv[0] == 0.525 and csv[99] == 12.858 and csv[100] == 13.432
    assert all(csv[i] <= csv[i + 1] for i in range(100))
    starts, totals = parse_ab_gnuplot(fixture("gnuplot_tsv"))
    assert len(starts) == 40 and starts.min() == 1795765086 and totals.min() >= 0


def test_result_from_ab_uses_fine_percentiles_and_counts_errors() -> None:
    config = BenchmarkConfig(url="http://127.0.0.1:18124/auth", concurrency=8, requests=2000)
    parsed = parse_ab_output(fixture("post_c8_k_h11"))
    r = result_from_ab(
        config,
        parsed,
        parse_ab_csv(fixture("percentiles_csv")),
        parse_ab_gnuplot(fixture("gnuplot_tsv")),
    )
    assert r.tool == "ab" and r.throughput_rps == 2256.48 and r.requests == 2000
    assert r.p50_ms == parse_ab_csv(fixture("percentiles_csv"))[50]  # csv value, not the integer
    assert r.p99_ms == 12.858 and r.max_ms == 13.432 and r.errors == 0
    killed = result_from_ab(config, parse_ab_output(fixture("server_killed")))
    assert killed.errors == killed.requests == 20000  # ab's failure count exceeds its request count
    assert killed.error_kinds["connection"] == 16232 + 8804 and killed.p99_ms == 16
    non2xx = result_from_ab(config, parse_ab_output(fixture("non2xx")))
    assert non2xx.error_kinds["http_non_2xx"] == 500 and non2xx.error_rate == 1.0


@pytest.mark.slow
@pytest.mark.skipif(ab_available() is None, reason="ab (apache2-utils) is not installed")
def test_run_ab_against_local_server(server: Server) -> None:
    config = BenchmarkConfig(
        url=server.url + "/auth", key="s3cret", concurrency=4, requests=600, warmup=50
    )
    seen = []
    server.reset()
    r = run_ab(config, [{"data": [{"age": 17}]}], on_progress=seen.append)
    assert r.tool == "ab" and r.requests == 600 and r.errors == 0
    assert server.stats()["hits"] == 650
    assert 0 < r.p50_ms <= r.p99_ms <= r.max_ms and r.throughput_rps > 0
    assert len(r.samples) == 600 and "s3cret" not in r.command
    assert seen and seen[-1].done == 600
    bad = run_ab(BenchmarkConfig(url=server.url + "/auth", concurrency=2, requests=40), [{"a": 1}])
    assert bad.errors == 40 and bad.error_kinds["http_non_2xx"] == 40


PROC_PLAIN = "sysfs /sys sysfs rw 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
PROC_HIDDEN = "proc /proc proc rw,nosuid,nodev,noexec,relatime,hidepid=invisible 0 0\n"


def test_a_key_on_abs_command_line_is_announced_unless_proc_hides_it() -> None:
    from lib.benchmark import AB_KEY_NOTICE, ab_key_notice
    from lib.benchmark.ab import process_list_is_private

    assert not process_list_is_private(PROC_PLAIN)
    assert process_list_is_private(PROC_HIDDEN)
    assert process_list_is_private(PROC_HIDDEN.replace("invisible", "2"))
    assert not process_list_is_private(PROC_HIDDEN.replace("invisible", "0"))
    assert ab_key_notice("k3y", PROC_PLAIN) == AB_KEY_NOTICE
    assert "process list" in AB_KEY_NOTICE
    assert ab_key_notice(None, PROC_PLAIN) is None
    assert ab_key_notice("k3y", PROC_HIDDEN) is None


@pytest.mark.skipif(ab_available() is None, reason="ab (apache2-utils) is not installed")
def test_an_ab_run_with_a_key_says_so_in_its_log(server, caplog, monkeypatch) -> None:
    import lib.benchmark.ab

    monkeypatch.setattr(lib.benchmark.ab, "process_list_is_private", lambda mounts=None: False)
    config = BenchmarkConfig(
        url=server.url, key="k3y", method="GET", requests=20, concurrency=2, warmup=0
    )
    with caplog.at_level("WARNING", logger="opsdeck.benchmark"):
        result = run_ab(config, None)
    assert result.requests == 20
    assert "visible to every local user" in caplog.text
    assert "k3y" not in (result.command or "") and "k3y" not in caplog.text
