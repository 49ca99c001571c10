from pathlib import Path

import pytest
import requests

import lib.sample_data as sample_data
from lib.sample_data import SampleUnavailable, fetch_bank_marketing


def test_local_copy_is_used_without_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("the local copy must be used first")

    monkeypatch.setattr(sample_data.requests, "get", no_network)
    copy = tmp_path / "bank.csv"
    copy.write_bytes(b"age,y\n30,no\n")
    assert fetch_bank_marketing(local_copy=copy) == (b"age,y\n30,no\n", str(copy))


def test_offline_without_a_copy_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise requests.ConnectionError("no route")

    monkeypatch.setattr(sample_data.requests, "get", offline)
    with pytest.raises(SampleUnavailable, match="OPSDECK_SAMPLE_DATA"):
        fetch_bank_marketing(local_copy=None)
