import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from lib.files import atomic_write
from lib.local.datasets import LocalDatasets
from lib.local.store import MIGRATIONS, Store
from lib.tabular import to_parquet_bytes
from lib.workspace import WorkspaceError

CSV = b"age,job,y\n30,admin,no\n45,technician,yes\n51,admin,no\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "home")


@pytest.fixture
def datasets(store: Store) -> LocalDatasets:
    return LocalDatasets(store, max_upload_bytes=1024 * 1024)


def test_store_uses_wal_and_schema_version(store: Store) -> None:
    conn = store.connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Store.schema_version(conn) == len(MIGRATIONS)
    # Opening again is a no-op migration.
    assert Store(store.home).migrate() == len(MIGRATIONS)


def test_newer_schema_is_refused(store: Store) -> None:
    store.connect().execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this opsdeck"):
        Store(store.home)


def test_versions_are_immutable_and_readable(datasets: LocalDatasets) -> None:
    v1 = datasets.upload("bank", CSV, "bank.csv", "first")
    v2 = datasets.upload("bank", CSV.replace(b"51", b"52"), "bank.csv")
    assert (v1.version, v2.version) == (1, 2)
    assert datasets.load("bank", 1)["age"].tolist() == [30, 45, 51]
    assert datasets.load("bank", 2)["age"].tolist() == [30, 45, 52]
    assert datasets.load("bank")["age"].tolist()[-1] == 52
    listed = datasets.list()
    assert len(listed) == 1
    assert listed[0].latest_version == 2 and listed[0].versions == 2
    assert listed[0].rows == 3 and listed[0].columns == 3
    assert [v.version for v in datasets.versions("bank")] == [2, 1]
    name, data = datasets.download("bank", 1)
    assert name == "bank.csv" and data == CSV


def test_preview_and_profile(datasets: LocalDatasets) -> None:
    datasets.upload("bank", CSV, "bank.csv")
    assert len(datasets.preview("bank", rows=2)) == 2
    prof = datasets.profile("bank").set_index("column")
    assert prof.loc["job", "distinct"] == 2
    assert prof.loc["age", "max"] == 51


def test_bad_upload_writes_nothing(datasets: LocalDatasets, store: Store) -> None:
    for bad in (b"", b"a,a\n1,2\n", b"1,2\n3,4\n"):
        with pytest.raises(WorkspaceError):
            datasets.upload("broken", bad, "broken.csv")
    with pytest.raises(WorkspaceError, match="over the"):
        datasets.upload("big", b"a\n" + b"1\n" * 600_000, "big.csv")
    with pytest.raises(WorkspaceError, match="Dataset name"):
        datasets.upload("../etc", CSV, "x.csv")
    assert datasets.list() == []
    assert not any((store.home / "datasets").iterdir())


def test_parquet_upload(datasets: LocalDatasets) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    dv = datasets.upload("pq", to_parquet_bytes(frame), "t.parquet")
    assert dv.file_format == "parquet"
    pd.testing.assert_frame_equal(datasets.load("pq"), frame)


def test_concurrent_uploads_get_distinct_versions(store: Store) -> None:
    errors: list[Exception] = []

    def upload(i: int) -> None:
        try:
            # A separate service object per thread, as separate processes would have.
            LocalDatasets(Store(store.home), 1 << 20).upload(
                "same", CSV + f"{i},x,no\n".encode(), "s.csv"
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = LocalDatasets(store, 1 << 20).versions("same")
    assert sorted(v.version for v in versions) == list(range(1, 9))
    # Every version holds the rows of exactly one upload.
    last_ages = {
        int(LocalDatasets(store, 1 << 20).load("same", v.version)["age"].iloc[-1]) for v in versions
    }
    assert last_ages == set(range(8))


def test_delete_removes_rows_and_files(datasets: LocalDatasets, store: Store) -> None:
    datasets.upload("gone", CSV, "g.csv")
    datasets.delete("gone")
    assert datasets.list() == []
    assert not (store.home / "datasets" / "gone").exists()
    with pytest.raises(WorkspaceError, match="does not exist"):
        datasets.delete("gone")
    with pytest.raises(WorkspaceError, match="does not exist"):
        datasets.get("gone")


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")

    def explode(_: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failed_metadata_write_leaves_no_version(datasets: LocalDatasets, store: Store) -> None:
    datasets.upload("keep", CSV, "k.csv")
    conn = sqlite3.connect(store.db_path)
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON dataset_versions BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.DatabaseError):
        datasets.upload("keep", CSV, "k.csv")
    assert [v.version for v in datasets.versions("keep")] == [1]
    assert sorted(p.name for p in (store.home / "datasets" / "keep").iterdir()) == ["v1"]
