import os
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from lib.files import atomic_write
from lib.local.datasets import LocalDatasets
from lib.local.store import MIGRATIONS, Store
from lib.settings import UploadLimits
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
    for bad in (b"", b"a,b\n1,2\n\x00\x01", b"a,b\n"):
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


def test_excel_upload_keeps_the_workbook_and_loads_typed(datasets: LocalDatasets) -> None:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["amount", "plan", "y"])
    for i in range(60):
        book.active.append(["?" if i == 3 else f"${i * 100:,}", ["a", "b"][i % 2], i % 2])
    raw = io.BytesIO()
    book.save(raw)
    dv = datasets.upload("sheet", raw.getvalue(), "Q3 report.xlsx")
    assert (dv.file_format, dv.rows, dv.columns) == ("excel", 60, 3)
    frame = datasets.load("sheet", dv.version)
    assert str(frame["amount"].dtype) == "float64" and frame["amount"].iloc[20] == 2000.0
    assert frame["amount"].isna().sum() == 1
    # the workbook itself is what a download gives back
    assert datasets.download("sheet", dv.version) == ("Q3 report.xlsx", raw.getvalue())
    # kept under its own kind of name: a macro workbook is not stored as an .xlsx
    macro = datasets.upload("macro", raw.getvalue(), "Q3 report.XLSM")
    assert [p.name for p in Path(macro.uri).glob("original.*")] == ["original.xlsm"]
    assert datasets.load("macro", macro.version)["amount"].iloc[20] == 2000.0


def test_arff_upload_keeps_the_file_and_loads_typed(datasets: LocalDatasets) -> None:
    arff = b"@relation credit\n@attribute age numeric\n@attribute 'job type' {a,b}\n"
    arff += b"@attribute y {yes,no}\n@data\n" + b"".join(
        b"%d,%s,%s\n" % (20 + i, b"?" if i == 4 else b"ab"[i % 2 : i % 2 + 1], b"yes")
        for i in range(30)
    )
    dv = datasets.upload("credit", arff, "credit-g.arff")
    assert (dv.file_format, dv.rows, dv.columns) == ("arff", 30, 3)
    assert [p.name for p in Path(dv.uri).glob("original.*")] == ["original.arff"]
    frame = datasets.load("credit", dv.version)
    assert frame["age"].dtype == "int64" and frame["job type"].isna().sum() == 1
    assert datasets.download("credit", dv.version) == ("credit-g.arff", arff)


def test_json_upload_keeps_the_file_and_loads_typed(datasets: LocalDatasets) -> None:
    records = b'[{"age": 31, "job": "admin.", "y": "no"}, {"age": "?", "job": null, "y": "yes"}]'
    dv = datasets.upload("api", records, "export")  # no extension: found by its content
    assert (dv.file_format, dv.rows, dv.columns) == ("json", 2, 3)
    assert [p.name for p in Path(dv.uri).glob("original.*")] == ["original.json"]
    frame = datasets.load("api", dv.version)
    assert str(frame["age"].dtype) == "float64" and frame["age"].isna().tolist() == [False, True]
    assert datasets.download("api", dv.version) == ("export", records)


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


# --- stored preview and profile, dtypes, missing tokens ---------------------------------------

MIXED = (
    b"age,fare,name,joined,vip\n"
    b"22,7.25,Ann,2024-01-02,True\n"
    b"?,71.5,Bob,2024-02-03,False\n"
    b"40,?,?,,True\n"
)


def test_profile_and_preview_are_computed_once_at_registration(
    datasets: LocalDatasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lib.local.datasets as module

    dv = datasets.upload("mixed", MIXED, "mixed.csv")
    folder = Path(dv.uri)
    assert {"profile.json", "preview.arrow", "data.parquet"} <= {p.name for p in folder.iterdir()}

    def no_reading(*args, **kwargs):
        raise AssertionError("the stored profile/preview must be read, not recomputed")

    monkeypatch.setattr(module, "profile_records", no_reading)
    monkeypatch.setattr(module, "write_preview", no_reading)
    monkeypatch.setattr(LocalDatasets, "load", no_reading)
    fresh = LocalDatasets(datasets.store, limits=datasets.limits)  # no in-process cache
    prof = fresh.profile("mixed").set_index("column")
    assert prof.loc["age", "kind"] == "numeric" and prof.loc["age", "missing_pct"] == 33.33
    assert prof.loc["age", "missing_tokens"] == '"?" (1)'
    assert prof.loc["name", "kind"] == "text" and prof.loc["name", "missing_pct"] == 33.33
    assert prof.loc["name", "missing_tokens"] == '"?" (1)'
    assert prof.loc["joined", "kind"] == "datetime"
    assert fresh.preview("mixed", rows=2)["name"].tolist() == ["Ann", "Bob"]


def test_stored_data_loads_with_the_profiles_dtypes(datasets: LocalDatasets) -> None:
    datasets.upload("mixed", MIXED, "mixed.csv")
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, None, 2.0],
            "s": ["a", None, "?"],
            "t": pd.to_datetime(["2024-01-01", None, "2024-01-03"]),
            "b": [True, False, True],
            "code": ["1", "?", "3"],
        }
    )
    datasets.upload("pq", to_parquet_bytes(frame), "f.parquet")
    for name in ("mixed", "pq"):
        loaded = datasets.load(name)
        prof = datasets.profile(name).set_index("column")
        assert {c: str(t) for c, t in loaded.dtypes.items()} == prof["dtype"].to_dict()
        assert loaded.dtypes.equals(datasets.preview(name).dtypes)
    mixed = datasets.load("mixed")
    assert str(mixed["age"].dtype) == "float64" and mixed["age"].isna().sum() == 1
    assert mixed["name"].tolist()[:2] == ["Ann", "Bob"] and pd.isna(mixed["name"].iloc[2])
    assert str(datasets.load("pq")["code"].dtype) == "float64"


def test_upload_takes_the_operators_missing_tokens(datasets: LocalDatasets) -> None:
    datasets.upload("strict", MIXED, "m.csv", missing_tokens=[""])
    prof = datasets.profile("strict").set_index("column")
    assert prof.loc["age", "kind"] == "text" and prof.loc["age", "missing_tokens"] == ""
    assert prof.loc["joined", "missing_tokens"] == "(empty) (1)"


def test_older_versions_get_their_profile_once(datasets: LocalDatasets) -> None:
    dv = datasets.upload("old", CSV, "old.csv")
    for stored in ("profile.json", "preview.arrow"):
        (Path(dv.uri) / stored).unlink()
    assert datasets.profile("old").set_index("column").loc["age", "max"] == 51
    assert len(datasets.preview("old")) == 3
    assert (Path(dv.uri) / "profile.json").is_file()
    assert (Path(dv.uri) / "preview.arrow").is_file()


# --- limits ---------------------------------------------------------------------------------


def test_hostile_parquet_is_refused_and_nothing_written(store: Store) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": pa.array(np.zeros(500_000))}), sink)
    bomb = sink.getvalue().to_pybytes()
    datasets = LocalDatasets(store, limits=UploadLimits(max_rows=100_000))
    with pytest.raises(WorkspaceError, match="500,000 rows, over the limit of 100,000"):
        datasets.upload("bomb", bomb, "bomb.parquet")
    assert datasets.list() == []
    assert [p.name for p in (store.home / "datasets").iterdir() if not p.name.startswith(".")] == []
    assert not any((store.home / "datasets" / ".staging").glob("*"))


# --- version numbers, races, crash leftovers, permissions --------------------------------------


def test_a_deleted_name_does_not_reuse_its_version_numbers(datasets: LocalDatasets) -> None:
    datasets.upload("gone", CSV, "g.csv")
    datasets.upload("gone", CSV, "g.csv")
    datasets.delete("gone")
    again = datasets.upload("gone", CSV.replace(b"51", b"52"), "g.csv")
    assert again.version == 3
    assert [v.version for v in datasets.versions("gone")] == [3]


def test_delete_racing_an_upload_keeps_the_committed_version(
    datasets: LocalDatasets, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload that commits while a delete is still removing files keeps its folder."""
    import shutil

    import lib.local.datasets as module

    datasets.upload("race", CSV, "r.csv")
    delete_committed, upload_committed = threading.Event(), threading.Event()
    real_rmtree = shutil.rmtree

    def rmtree_after_the_upload(path, *args, **kwargs):
        if threading.current_thread().name == "deleter":
            delete_committed.set()
            upload_committed.wait(10)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(module.shutil, "rmtree", rmtree_after_the_upload)
    errors: list[BaseException] = []

    def delete() -> None:
        try:
            LocalDatasets(Store(store.home), 1 << 20).delete("race")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    deleter = threading.Thread(target=delete, name="deleter")
    deleter.start()
    assert delete_committed.wait(10)
    dv = LocalDatasets(Store(store.home), 1 << 20).upload("race", CSV, "r.csv")
    upload_committed.set()
    deleter.join()
    assert errors == []
    assert dv.version == 2  # the deleted v1's number is not reused
    assert [v.version for v in datasets.versions("race")] == [2]
    assert len(datasets.load("race", 2)) == 3  # its folder survived the delete


def test_leftovers_of_a_crash_are_cleaned_on_the_next_open(
    datasets: LocalDatasets, store: Store
) -> None:
    import subprocess
    import sys

    datasets.upload("keep", CSV, "k.csv")
    root = store.home / "datasets"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    crashed = root / ".staging" / f"{dead}-abc"
    crashed.mkdir(parents=True)
    (crashed / "data.parquet").write_bytes(b"half")
    in_flight = root / ".staging" / f"{os.getpid()}-def"  # an upload of a live process
    in_flight.mkdir()
    legacy = root / "keep" / ".staging-0123-1.0"
    legacy.mkdir()
    orphan = root / "keep" / "v9"  # renamed into place, the row never committed
    orphan.mkdir()
    (root / ".trash" / "x").mkdir(parents=True)
    LocalDatasets(Store(store.home), 1 << 20)
    assert not crashed.exists() and not legacy.exists() and not orphan.exists()
    assert not any((root / ".trash").iterdir())
    assert in_flight.exists()
    assert len(datasets.load("keep", 1)) == 3


def test_workspace_home_is_owner_only(tmp_path: Path) -> None:
    fresh = Store(tmp_path / "new-home")
    assert fresh.home.stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert Store(loose).home.stat().st_mode & 0o777 == 0o700


def test_the_version_folder_rename_is_made_durable(
    datasets: LocalDatasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lib.local.datasets as module

    synced: list[Path] = []
    monkeypatch.setattr(module, "fsync_dir", lambda path: synced.append(Path(path)))
    dv = datasets.upload("durable", CSV, "d.csv")
    assert Path(dv.uri).parent in synced
