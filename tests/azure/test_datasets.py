import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError

from lib.azure.datasets import AzureDatasets, fetch_datastore_file
from lib.local.datasets import LocalDatasets
from lib.local.store import Store
from lib.tabular import MISSING_TOKENS, TableError, parse_table
from lib.workspace import DatasetService, WorkspaceError
from tests.support.azure_fakes import DATASTORE_PREFIX, FakeMLClient, foreign_asset, http_error

CSV = b"age,job,y\n30,admin,no\n45,technician,yes\n51,admin,no\n"


@pytest.fixture
def datasets(fake_client: FakeMLClient) -> AzureDatasets:
    return AzureDatasets(
        fake_client, max_upload_bytes=1024 * 1024, fetch_bytes=fake_client.datastore.fetch
    )


def creates(client: FakeMLClient) -> list[tuple]:
    return [c for c in client.data.calls if c[0] == "create_or_update"]


def test_implements_the_protocol(datasets: AzureDatasets) -> None:
    assert isinstance(datasets, DatasetService)


def test_upload_registers_a_uri_file_asset_with_summary_tags(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    dv = datasets.upload("bank", CSV, "bank.csv", "first cut")

    [sent] = fake_client.data.received
    assert sent.type == AssetTypes.URI_FILE
    assert (sent.name, sent.version, sent.description) == ("bank", "1", "first cut")
    assert Path(str(sent.path)).name == "bank.csv"
    assert fake_client.data.staged_bytes == [CSV]
    # The staging folder is gone once the SDK has uploaded the file.
    assert not Path(str(sent.path)).exists()
    assert sent.tags == {
        "rows": "3",
        "columns": "3",
        "column_names": json.dumps(["age", "job", "y"]),
        "sha256": hashlib.sha256(CSV).hexdigest(),
        "file_name": "bank.csv",
        "format": "csv",
        "size_bytes": str(len(CSV)),
        "missing_tokens": json.dumps(list(MISSING_TOKENS)),
    }
    assert (dv.name, dv.version, dv.rows, dv.columns) == ("bank", 1, 3, 3)
    assert dv.column_names == ["age", "job", "y"]
    assert dv.uri.startswith(f"{DATASTORE_PREFIX}/LocalUpload/")
    assert dv.file_format == "csv" and dv.size_bytes == len(CSV)


def test_second_upload_is_version_two_and_both_stay_readable(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    datasets.upload("bank", CSV, "bank.csv", "first cut")
    v2 = datasets.upload("bank", CSV.replace(b"51", b"52"), "bank.csv")

    assert v2.version == 2
    assert [c[2] for c in creates(fake_client)] == ["1", "2"]
    assert [v.version for v in datasets.versions("bank")] == [2, 1]
    assert datasets.load("bank", 1)["age"].tolist() == [30, 45, 51]
    assert datasets.load("bank")["age"].tolist() == [30, 45, 52]
    [listed] = datasets.list()
    assert (listed.name, listed.latest_version, listed.versions) == ("bank", 2, 2)
    assert (listed.rows, listed.columns, listed.size_bytes) == (3, 3, len(CSV))
    assert listed.description == "first cut"
    assert listed.created < listed.updated


def test_list_answers_from_tags_without_downloading(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    datasets.upload("bank", CSV, "bank.csv")
    datasets.upload("other", b"a,b\n1,2\n", "other.csv")
    listed = datasets.list()
    assert [d.name for d in listed] == ["other", "bank"]  # most recently updated first
    assert datasets.get("bank").column_names == ["age", "job", "y"]
    assert fake_client.datastore.reads == []


@pytest.mark.parametrize(
    "data, file_name",
    [
        (b"", "empty.csv"),
        (b"a,b\n", "norows.csv"),
        (b"a,b\n1,2\n\x00\x01", "binary.csv"),
        (b"PAR1 not really parquet", "bad.parquet"),
    ],
)
def test_bad_file_is_refused_with_the_tabular_message_and_nothing_created(
    datasets: AzureDatasets, fake_client: FakeMLClient, data: bytes, file_name: str
) -> None:
    with pytest.raises(TableError) as expected:
        parse_table(file_name, data)
    with pytest.raises(WorkspaceError) as raised:
        datasets.upload("bank", data, file_name)
    assert str(raised.value) == str(expected.value)
    assert creates(fake_client) == []


def test_bad_name_and_oversized_file_touch_nothing(fake_client: FakeMLClient) -> None:
    small = AzureDatasets(fake_client, max_upload_bytes=10, fetch_bytes=fake_client.datastore.fetch)
    with pytest.raises(WorkspaceError, match="Dataset name must start"):
        small.upload("bad name!", CSV, "bank.csv")
    with pytest.raises(WorkspaceError, match="over the"):
        small.upload("bank", CSV, "bank.csv")
    assert fake_client.data.calls == []


def test_parquet_upload_round_trips_types(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5], "flag": [True, False], "s": ["a", "b"]})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    dv = datasets.upload("typed", buf.getvalue(), "typed.parquet")
    assert dv.file_format == "parquet"
    assert Path(str(fake_client.data.received[0].path)).name == "typed.parquet"
    pd.testing.assert_frame_equal(datasets.load("typed"), frame)


def test_excel_upload_is_staged_as_a_workbook_and_read_typed(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    for row in (["amount", "y"], ["$1,200", "yes"], [300, "no"], ["?", "no"]):
        book.active.append(row)
    raw = io.BytesIO()
    book.save(raw)
    dv = datasets.upload("sheet", raw.getvalue(), "Sales 2024")
    assert Path(str(fake_client.data.received[0].path)).name == "Sales_2024.xlsx"
    assert (dv.file_format, dv.rows) == ("excel", 3)
    assert datasets.load("sheet", 1)["amount"].tolist()[:2] == [1200.0, 300.0]


def test_json_upload_is_staged_as_json_and_read_again(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    records = b'{"results": [{"amount": "1,200", "y": "yes"}, {"amount": 300, "y": "no"}]}'
    dv = datasets.upload("api", records, "export")
    assert Path(str(fake_client.data.received[0].path)).name == "export.json"
    assert (dv.file_format, dv.rows) == ("json", 2)
    assert datasets.load("api", 1)["amount"].tolist() == [1200, 300]


def test_a_compressed_upload_is_staged_as_uploaded_and_read_inside(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    import gzip

    packed = gzip.compress(CSV)
    dv = datasets.upload("bank", packed, "bank.csv.gz")
    assert Path(str(fake_client.data.received[0].path)).name == "bank.csv.gz"
    assert fake_client.data.staged_bytes == [packed]
    assert dv.rows == datasets.load("bank", 1).shape[0] > 0
    assert datasets.load("bank", 1).equals(datasets_load_plain(datasets))


def datasets_load_plain(datasets: AzureDatasets) -> pd.DataFrame:
    datasets.upload("plain", CSV, "bank.csv")
    return datasets.load("plain", 1)


def test_preview_profile_download_round_trip_through_the_fetcher(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    datasets.upload("bank", CSV, "my bank.csv")
    assert len(datasets.preview("bank", rows=2)) == 2
    prof = datasets.profile("bank", 1).set_index("column")
    assert prof.loc["job", "distinct"] == 2
    assert prof.loc["age", "max"] == 51
    name, data = datasets.download("bank", 1)
    assert (name, data) == ("my bank.csv", CSV)
    # Versions are immutable, so one download serves preview, profile and download.
    assert len(fake_client.datastore.reads) == 1


def test_file_changed_in_the_datastore_is_reported(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    dv = datasets.upload("bank", CSV, "bank.csv")
    fake_client.datastore.files[dv.uri] = CSV + b"99,admin,no\n"
    with pytest.raises(WorkspaceError, match="checksum"):
        datasets.load("bank")


def test_delete_archives_every_version_and_numbers_are_not_reused(
    datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    datasets.upload("bank", CSV, "bank.csv")
    datasets.upload("bank", CSV, "bank.csv")
    datasets.delete("bank")

    archives = [c for c in fake_client.data.calls if c[0] == "archive"]
    assert sorted(archives) == [("archive", "bank", "1"), ("archive", "bank", "2")]
    assert datasets.list() == []
    assert datasets.versions("bank") == []
    with pytest.raises(WorkspaceError, match="Dataset bank does not exist."):
        datasets.get("bank")
    assert datasets.upload("bank", CSV, "bank.csv").version == 3


def test_missing_datasets_raise_the_local_messages(tmp_path: Path, datasets: AzureDatasets) -> None:
    local = LocalDatasets(Store(tmp_path / "home"), max_upload_bytes=1024 * 1024)
    for service in (local, datasets):
        service.upload("bank", CSV, "bank.csv")
    cases = [
        lambda s: s.get("nope"),
        lambda s: s.get("bank", 9),
        lambda s: s.preview("nope"),
        lambda s: s.download("bank", 9),
        lambda s: s.delete("nope"),
    ]
    for case in cases:
        with pytest.raises(WorkspaceError) as local_error:
            case(local)
        with pytest.raises(WorkspaceError) as azure_error:
            case(datasets)
        assert str(azure_error.value) == str(local_error.value)


def test_a_named_sheet_is_read_again_as_registered(tmp_path: Path, datasets: AzureDatasets) -> None:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Big"
    for i in range(30):
        book.active.append([f"r{i}", i])
    small = book.create_sheet("Small")
    small.append(["age", "y"])
    small.append([30, "no"])
    small.append([45, "yes"])
    saved = io.BytesIO()
    book.save(saved)
    local = LocalDatasets(Store(tmp_path / "home"), max_upload_bytes=1024 * 1024)
    for service in (local, datasets):
        dv = service.upload("book", saved.getvalue(), "book.xlsx", sheet="Small")
        assert (dv.rows, dv.columns) == (2, 2)
        assert service.load("book", dv.version)["age"].tolist() == [30, 45]
    assert datasets.sheet("book", 1) == "Small"
    assert local.get("book", 1).rows == datasets.get("book", 1).rows == 2


def test_same_answers_as_the_local_backend(tmp_path: Path, datasets: AzureDatasets) -> None:
    local = LocalDatasets(Store(tmp_path / "home"), max_upload_bytes=1024 * 1024)
    semi = b"age;job;y\n30;admin;no\n45;technician;yes\n"
    tokens = b"age;job;y\n30;admin;?\n?;N/A;yes\n"
    for service in (local, datasets):
        service.upload("bank", CSV, "bank.csv", "first")
        service.upload("bank", semi, "bank-semicolon.csv")
        service.upload("bank", tokens, "bank-tokens.csv", missing_tokens=["?"])
    fields = ("name", "version", "description", "file_name", "file_format", "rows", "columns")
    fields += ("size_bytes", "sha256", "column_names")
    assert str(datasets.load("bank", 3)["age"].dtype) == "float64"
    assert datasets.profile("bank", 3).set_index("column").loc["age", "missing_tokens"] == (
        '"?" (1)'
    )
    for version in (1, 2, 3):
        a, b = local.get("bank", version), datasets.get("bank", version)
        assert {f: getattr(a, f) for f in fields} == {f: getattr(b, f) for f in fields}
        pd.testing.assert_frame_equal(
            local.preview("bank", version), datasets.preview("bank", version)
        )
        pd.testing.assert_frame_equal(
            local.profile("bank", version), datasets.profile("bank", version)
        )
        assert local.download("bank", version) == datasets.download("bank", version)


def test_concurrent_upload_taking_the_version_is_retried(
    datasets: AzureDatasets, fake_client: FakeMLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets.upload("bank", CSV, "bank.csv")
    real_list = fake_client.data.list
    stale = {"left": 1}

    def list_once_stale(name=None, *, list_view_type=ListViewType.ACTIVE_ONLY):
        # The first version listing misses v2, which another upload has just created.
        if name == "bank" and stale["left"]:
            stale["left"] -= 1
            return real_list(name, list_view_type=list_view_type)[:1]
        return real_list(name, list_view_type=list_view_type)

    other = AzureDatasets(fake_client, 1024 * 1024, fetch_bytes=fake_client.datastore.fetch)
    other.upload("bank", CSV, "bank.csv")
    monkeypatch.setattr(fake_client.data, "list", list_once_stale)
    assert datasets.upload("bank", CSV, "bank.csv").version == 3
    assert [c[2] for c in creates(fake_client)] == ["1", "2", "2", "3"]


def test_conflict_that_never_clears_gives_up(
    datasets: AzureDatasets, fake_client: FakeMLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_taken(data):
        raise ResourceExistsError("already exists")

    monkeypatch.setattr(fake_client.data, "create_or_update", always_taken)
    with pytest.raises(WorkspaceError, match="try again"):
        datasets.upload("bank", CSV, "bank.csv")


def test_assets_made_elsewhere_are_skipped_or_read_with_defaults(
    tmp_path: Path, datasets: AzureDatasets, fake_client: FakeMLClient
) -> None:
    (tmp_path / "raw.csv").write_bytes(CSV)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "part.csv").write_bytes(CSV)
    fake_client.data.create_or_update(foreign_asset("raw", "1", tmp_path / "raw.csv"))
    fake_client.data.create_or_update(foreign_asset("raw", "2025-01-01", tmp_path / "raw.csv"))
    fake_client.data.create_or_update(
        foreign_asset("parts", "1", tmp_path / "folder", AssetTypes.URI_FOLDER)
    )
    assert [d.name for d in datasets.list()] == ["raw"]
    [only] = datasets.versions("raw")
    assert (only.version, only.file_name, only.rows, only.sha256) == (1, "raw.csv", 0, "")
    # With no recorded checksum the file is still readable.
    assert datasets.load("raw")["job"].tolist() == ["admin", "technician", "admin"]


def test_sign_in_and_permission_failures_become_readable_errors(
    datasets: AzureDatasets, fake_client: FakeMLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_token(*args, **kwargs):
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(fake_client.data, "list", no_token)
    with pytest.raises(WorkspaceError, match="az login"):
        datasets.list()

    def forbidden(*args, **kwargs):
        raise http_error("AuthorizationFailed", 403)

    monkeypatch.setattr(fake_client.data, "list", forbidden)
    with pytest.raises(WorkspaceError, match="lacks permission"):
        datasets.upload("bank", CSV, "bank.csv")


def test_production_fetcher_reads_local_paths_and_refuses_other_schemes(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_bytes(CSV)

    def no_client():
        raise AssertionError("a local path needs no client")

    assert fetch_datastore_file(no_client, str(tmp_path / "f.csv")) == CSV
    with pytest.raises(WorkspaceError, match="only azureml://"):
        fetch_datastore_file(no_client, "https://example.invalid/f.csv")
