from tests.pages.conftest import button, open_page

CSV = b"age;job;y\n30;admin;no\n45;technician;yes\n51;admin;no\n"


def test_upload_through_the_form_creates_versions(local_workspace) -> None:
    at = open_page("datasets.py")
    assert any("No datasets yet" in i.value for i in at.info)
    at.file_uploader(key="datasets_upload").set_value(("people.csv", CSV, "text/csv"))
    button(at, "Register dataset").click().run()
    assert not at.exception
    assert any("Registered **people v1**: 3 rows × 3 columns" in s.value for s in at.success)
    assert [m.value for m in at.metric][:2] == ["3", "3"]
    # Same name again: a new version, the old one still readable.
    at.file_uploader(key="datasets_upload").set_value(
        ("people.csv", CSV + b"60;retired;yes\n", "text/csv")
    )
    button(at, "Register dataset").click().run()
    assert any("people v2" in s.value for s in at.success)
    assert [v.version for v in local_workspace.datasets.versions("people")] == [2, 1]
    assert len(local_workspace.datasets.load("people", 1)) == 3


def test_broken_csv_shows_error_and_creates_nothing(local_workspace) -> None:
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(("bad.csv", b"a,a\n1,2\n", "text/csv"))
    button(at, "Register dataset").click().run()
    assert any("Duplicate column names" in e.value for e in at.error)
    assert local_workspace.datasets.list() == []


def test_preview_profile_and_delete(local_workspace) -> None:
    local_workspace.datasets.upload("people", CSV, "people.csv", "staff list")
    at = open_page("datasets.py")
    assert at.selectbox(key="datasets_pick").value == "people"
    frames = [d.value for d in at.dataframe]
    preview = next(f for f in frames if list(f.columns) == ["age", "job", "y"])
    assert len(preview) == 3
    profile = next(f for f in frames if "missing_pct" in f.columns)
    assert set(profile["column"]) == {"age", "job", "y"}
    assert button(at, "Delete dataset").disabled
    at.checkbox(key="datasets_delete_confirm").check().run()
    button(at, "Delete dataset").click().run()
    assert not at.exception
    assert local_workspace.datasets.list() == []


def test_bank_marketing_sample_button(local_workspace, bank_csv) -> None:
    at = open_page("datasets.py")
    button(at, "Add the Bank Marketing sample").click().run()
    assert not at.exception
    assert any("bankmarketing v1**: 32,950 rows × 21 columns" in s.value for s in at.success)
