"""Endpoint keys: the keys file and the Bearer check, without a server."""

from __future__ import annotations

import json

import pytest

from lib.local.scoring.keys import KeyStore, read_keys_file, write_keys_file


def test_keys_file_is_private_and_regenerating_one_key_keeps_the_other(tmp_path):
    path = tmp_path / "endpoint" / "keys.json"
    primary, secondary = write_keys_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert primary != secondary and len(primary) >= 32
    assert read_keys_file(path) == (primary, secondary)
    new_primary, kept = write_keys_file(path, secondary=secondary)
    assert kept == secondary and new_primary != primary
    assert read_keys_file(path) == (new_primary, secondary)
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]  # no temp file left


def test_keys_file_accepts_short_names_and_refuses_no_keys(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"primary": "a", "secondary": "b"}))
    assert read_keys_file(path) == ("a", "b")
    path.write_text(json.dumps({"primary_key": ""}))
    with pytest.raises(ValueError, match="no usable keys"):
        read_keys_file(path)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"Bearer one", True),
        (b"bearer two", True),
        (b"BEARER one ", True),
        (b"Bearer three", False),
        (b"Bearer ", False),
        (b"Bearer", False),
        (b"Basic one", False),
        (b"one", False),
        (None, False),
    ],
)
def test_bearer_check(tmp_path, header, ok):
    write_keys_file(tmp_path / "keys.json", "one", "two")
    assert KeyStore(tmp_path / "keys.json").check(header) is ok


def test_a_rewritten_keys_file_is_picked_up(tmp_path):
    path = tmp_path / "keys.json"
    write_keys_file(path, "one", "two")
    store = KeyStore(path)
    assert store.check(b"Bearer one")
    write_keys_file(path, "uno", "two")
    assert not store.check(b"Bearer one")
    assert store.check(b"Bearer uno") and store.check(b"Bearer two")
