import pytest

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


def test_an_excel_workbook_uploads_through_the_form(local_workspace) -> None:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    for row in (["age", "price", "y"], [30, "$1,200", "no"], ["?", "$950", "yes"], [51, 80, "no"]):
        book.active.append(row)
    raw = io.BytesIO()
    book.save(raw)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(("Staff list.xlsx", raw.getvalue(), xlsx))
    button(at, "Register dataset").click().run()
    assert not at.exception
    assert any("Registered **Staff-list v1**: 3 rows × 3 columns" in s.value for s in at.success)
    frame = local_workspace.datasets.load("Staff-list", 1)
    assert frame["price"].tolist() == [1200.0, 950.0, 80.0] and frame["age"].isna().sum() == 1


def test_broken_csv_shows_error_and_creates_nothing(local_workspace) -> None:
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(("bad.csv", b"a,b\n", "text/csv"))
    button(at, "Register dataset").click().run()
    assert any("no data rows" in e.value for e in at.error)
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
    local_workspace.datasets.upload("keep", CSV, "keep.csv")
    at.selectbox(key="datasets_pick").set_value("people").run()
    at.checkbox(key="datasets_delete_confirm_people").check().run()
    button(at, "Delete dataset").click().run()
    assert not at.exception
    assert [d.name for d in local_workspace.datasets.list()] == ["keep"]
    assert any("Deleted **people** and its 1 version(s)" in s.value for s in at.success)
    # the next dataset shown is not one click from deletion
    assert at.selectbox(key="datasets_pick").value == "keep"
    assert not at.checkbox(key="datasets_delete_confirm_keep").value
    assert button(at, "Delete dataset").disabled


def test_bank_marketing_sample_button(local_workspace, bank_csv) -> None:
    at = open_page("datasets.py")
    button(at, "Add the Bank Marketing sample").click().run()
    assert not at.exception
    assert any("bankmarketing v1**: 32,950 rows × 21 columns" in s.value for s in at.success)


TITANIC = b"name,age,fare\nAllen,29,211.3\nAllison,?,151.5\nAndrews,NA,?\n"


def _register(at, file_name: str, data: bytes):
    at.file_uploader(key="datasets_upload").set_value((file_name, data, "text/csv"))
    return button(at, "Register dataset").click().run()


def test_the_new_dataset_is_shown_after_registering(local_workspace) -> None:
    local_workspace.datasets.upload("first", CSV, "first.csv")
    at = open_page("datasets.py")
    assert at.selectbox(key="datasets_pick").value == "first"
    at.session_state["datasets_add"] = True  # the operator opens the section
    _register(at, "second.csv", CSV + b"70;retired;no\n")
    assert not at.exception
    assert at.selectbox(key="datasets_pick").value == "second"
    assert any(h.value == "second v1" for h in at.subheader)
    assert [m.value for m in at.metric][:2] == ["4", "3"]


def test_any_file_name_is_taken_and_read_by_what_it_holds(local_workspace) -> None:
    """UCI hands out `adult.test`; exports come without an extension."""
    at = open_page("datasets.py")
    assert list(at.file_uploader(key="datasets_upload").proto.type) == []  # no name filter
    _register(at, "adult.test", CSV)
    assert any("Registered **adult v1**" in s.value for s in at.success)
    _register(at, "page.csv", b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n")
    assert any("web page" in e.value for e in at.error)


def test_the_add_section_stays_open_with_its_messages(local_workspace) -> None:
    at = open_page("datasets.py")
    assert at.expander[0].proto.expanded  # empty workspace: open
    _register(at, "people.csv", CSV)
    at.run()  # any later rerun
    assert at.expander[0].proto.expanded
    local_workspace.datasets.upload("other", CSV, "other.csv")
    at = open_page("datasets.py")
    assert not at.expander[0].proto.expanded  # datasets exist: closed until opened
    at.session_state["datasets_add"] = True
    _register(at, "bad.csv", b"a,b\n")
    assert at.expander[0].proto.expanded
    assert any("no data rows" in e.value for e in at.error)


def test_a_byte_identical_file_asks_before_a_new_version(local_workspace) -> None:
    at = open_page("datasets.py")
    _register(at, "people.csv", CSV)
    _register(at, "people.csv", CSV)
    assert any("byte-identical to **people v1**" in w.value for w in at.warning)
    assert [v.version for v in local_workspace.datasets.versions("people")] == [1]
    button(at, "Keep the existing version").click().run()
    assert not at.warning
    assert [v.version for v in local_workspace.datasets.versions("people")] == [1]
    _register(at, "people.csv", CSV)
    button(at, "Register as a new version").click().run()
    assert not at.exception
    assert any("Registered **people v2**" in s.value for s in at.success)
    assert [v.version for v in local_workspace.datasets.versions("people")] == [2, 1]


def test_a_report_title_above_the_header_is_left_out_and_said(local_workspace) -> None:
    import io

    import openpyxl

    report = b"Quarterly staff report\nGenerated 2024-10-01,,\n\nage,price,y\n30,5,no\n41,7,yes\n"
    at = open_page("datasets.py")
    _register(at, "report.csv", report)
    assert any("Registered **report v1**: 2 rows × 3 columns" in s.value for s in at.success)
    shown = " ".join(i.value for i in at.info)
    assert "The first 3 rows were a title or blank" in shown and "from row 4" in shown
    assert list(local_workspace.datasets.load("report", 1).columns) == ["age", "price", "y"]
    # a spreadsheet with its title in A1
    book = openpyxl.Workbook()
    for row in (["Staff"], [], ["age", "price", "y"], [30, 5, "no"], [41, 7, "yes"]):
        book.active.append(row)
    raw = io.BytesIO()
    book.save(raw)
    at.text_input(key="datasets_name").set_value("sheet")
    _register(at, "staff.xlsx", raw.getvalue())
    assert "from row 3" in " ".join(i.value for i in at.info)
    assert local_workspace.datasets.load("sheet", 1)["price"].tolist() == [5, 7]
    # a plain file says nothing of the kind
    at.text_input(key="datasets_name").set_value("plain")
    _register(at, "plain.csv", CSV)
    assert not any("title" in i.value for i in at.info)


def test_a_zipped_file_without_a_header_row_is_read_and_said(local_workspace) -> None:
    """UCI's adult census as downloaded: zipped, no header row, ", " between fields."""
    import io
    import zipfile

    rows = b"39, State-gov, 77516, <=50K\n50, Private, 83311, >50K\n38, Private, 215646, <=50K\n"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("adult.names", b"| census income")
        archive.writestr("adult.data", rows)
    at = open_page("datasets.py")
    _register(at, "adult.zip", raw.getvalue())
    assert any("Registered **adult v1**: 3 rows × 4 columns" in s.value for s in at.success)
    shown = " ".join(i.value for i in at.info)
    assert "Read **adult.data**, the one table in the zip archive" in shown
    assert "The first row holds values, not column names" in shown
    frame = local_workspace.datasets.load("adult", 1)
    assert frame.columns.tolist() == ["column_1", "column_2", "column_3", "column_4"]
    assert frame["column_2"].tolist() == ["State-gov", "Private", "Private"]


def test_an_api_export_in_json_registers_with_its_placeholders_missing(local_workspace) -> None:
    """A JSON Lines export with nested records and `?` for an unknown occupation."""
    import json

    rows = [
        {"age": 30 + i, "job": {"title": "?" if i % 4 == 0 else "clerk"}, "y": "no"}
        for i in range(12)
    ]
    at = open_page("datasets.py")
    _register(at, "people.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert any("Registered **people v1**: 12 rows × 3 columns" in s.value for s in at.success)
    assert any('**job.title**: "?" (3)' in i.value for i in at.info)
    frame = local_workspace.datasets.load("people", 1)
    assert frame["job.title"].isna().sum() == 3 and str(frame["age"].dtype) == "int64"


def test_a_report_workbook_is_read_from_its_data_sheet_and_said(local_workspace) -> None:
    """A statistics office's workbook: a cover page first, a source note and totals below."""
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["Household survey 2023"])
    data = book.create_sheet("Data")
    data.append(["region", "households", "share"])
    for i in range(12):
        data.append([f"R{i}", 100 + i, 0.5])
    data.append(["Total", 1266, None])
    data.append([])
    data.append(["Source: Office of Statistics"])
    raw = io.BytesIO()
    book.save(raw)
    at = open_page("datasets.py")
    _register(at, "survey.xlsx", raw.getvalue())
    assert any("Registered **survey v1**: 12 rows × 3 columns" in s.value for s in at.success)
    shown = " ".join(i.value for i in at.info)
    assert "Read the sheet **Data**" in shown and "Not read: the sheets **Cover**" in shown
    assert "last 2 rows below the table hold notes or totals" in shown
    frame = local_workspace.datasets.load("survey", 1)
    assert str(frame["households"].dtype) == "int64" and frame["households"].max() == 111
    # The operator names another sheet: a new version of what that sheet holds.
    codes = book.create_sheet("Codes")
    codes.append(["region", "name"])
    for i in range(3):
        codes.append([f"R{i}", f"Region {i}"])
    raw = io.BytesIO()
    book.save(raw)
    at.text_input(key="datasets_sheet").set_value(" codes ")
    _register(at, "survey.xlsx", raw.getvalue())
    assert any("Registered **survey v2**: 3 rows × 2 columns" in s.value for s in at.success)
    assert "Not read: the sheets **Cover**, **Data**" in " ".join(i.value for i in at.info)
    at.text_input(key="datasets_sheet").set_value("Summary")
    at.text_input(key="datasets_name").set_value("summary")
    _register(at, "survey.xlsx", raw.getvalue())
    assert any("no sheet named 'Summary'" in e.value for e in at.error)


def test_recognised_missing_tokens_are_shown_after_upload(local_workspace) -> None:
    at = open_page("datasets.py")
    _register(at, "titanic.csv", TITANIC)
    shown = " ".join(i.value for i in at.info)
    assert '**age**: "?" (1), "NA" (1)' in shown and '**fare**: "?" (1)' in shown
    profile = next(d.value for d in at.dataframe if "missing_tokens" in d.value.columns)
    assert profile.set_index("column").loc["age", "dtype"] == "float64"
    # The operator's own list: without "?", age is text.
    at.text_input(key="datasets_tokens").set_value("NA")
    at.text_input(key="datasets_name").set_value("titanic_strict")
    _register(at, "titanic.csv", TITANIC)
    strict = local_workspace.datasets.profile("titanic_strict").set_index("column")
    assert strict.loc["age", "kind"] == "text"


def test_empty_sample_variable_keeps_the_sample(
    local_workspace, bank_csv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lib.settings import find_sample_data

    if find_sample_data({}) is None:
        pytest.skip("no default copy of the sample beside the repository")
    monkeypatch.setenv("OPSDECK_SAMPLE_DATA", "")
    at = open_page("datasets.py")
    button(at, "Add the Bank Marketing sample").click().run()
    assert not at.exception
    assert any("bankmarketing v1**" in s.value for s in at.success)


def test_a_big_file_registers_in_the_background_and_the_page_stays_usable(
    hermetic_env, monkeypatch
) -> None:
    import time

    from lib.ui import workspace

    monkeypatch.setenv("OPSDECK_BACKGROUND_UPLOAD_MB", "1")  # before the workspace is opened
    local_workspace = workspace()
    local_workspace.datasets.upload("people", CSV, "people.csv")
    big = b"age,job,y\n" + b"".join(b"%d,clerk,?\n" % (i % 90) for i in range(150_000))
    assert len(big) > 1024 * 1024
    at = open_page("datasets.py")
    at.file_uploader(key="datasets_upload").set_value(("big.csv", big, "text/csv"))
    button(at, "Register dataset").click().run()
    assert not at.exception
    # The run ended at once: the page shows the upload under way and the other dataset.
    assert any("in the background" in i.value for i in at.info), [i.value for i in at.info]
    assert at.selectbox(key="datasets_pick").value == "people"
    deadline = time.monotonic() + 90
    while not any("Registered **big v1**" in s.value for s in at.success):
        assert time.monotonic() < deadline, [i.value for i in at.info + at.error]
        time.sleep(0.5)
        at.run()
        assert not at.exception
    assert any("150,000 rows × 3 columns" in s.value for s in at.success)
    assert any('**y**: "?" (150000)' in i.value for i in at.info)
    at.run()  # the detail shows what arrived
    assert at.selectbox(key="datasets_pick").value == "big"
    assert len(local_workspace.datasets.load("big", 1)) == 150_000
    button(at, "Dismiss").click().run()
    assert not any("big v1" in s.value for s in at.success)


def test_numbers_kept_text_by_a_word_are_read_again_with_one_click(local_workspace) -> None:
    rows = [f"{30 + i % 40},{'refused' if i % 15 == 4 else 20_000 + 311 * i}" for i in range(90)]
    survey = ("age,income\n" + "\n".join(rows) + "\n").encode()
    at = open_page("datasets.py")
    _register(at, "survey.csv", survey)
    assert local_workspace.datasets.profile("survey").set_index("column").loc["income", "kind"] == (
        "text"
    )
    assert any('income is numbers but for "refused" (6)' in w.value for w in at.warning)
    button(at, "Register again with refused as missing").click().run()
    assert not at.exception
    assert any("Registered **survey v2**" in s.value for s in at.success)
    income = local_workspace.datasets.load("survey", 2)["income"]
    assert income.dtype == "float64" and income.isna().sum() == 6
    assert at.text_input(key="datasets_tokens").value.endswith(", refused")
    assert not any("numbers but for" in w.value for w in at.warning)


def test_zeros_that_mean_not_measured_are_read_again_in_their_columns_only(
    local_workspace,
) -> None:
    """Pima's diabetes table writes 0 for an insulin or skin reading not taken; 0 pregnancies
    is a count."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame(
        {
            "Pregnancies": rng.poisson(3, n),
            "Insulin": np.where(np.arange(n) % 3 == 0, 0, rng.integers(15, 400, n)),
            "BMI": np.where(np.arange(n) % 50 == 1, 0, rng.normal(32, 6, n).clip(18.2).round(1)),
            "Outcome": rng.integers(0, 2, n),
        }
    )
    at = open_page("datasets.py")
    _register(at, "diabetes.csv", frame.to_csv(index=False).encode())
    note = " ".join(w.value for w in at.warning)
    assert "Insulin = 0 in 100 rows (33.3%)" in note and "BMI = 0 in 6 rows" in note
    assert "Pregnancies" not in note
    button(at, "Register again with Insulin=0, BMI=0 as missing").click().run()  # listed: short
    assert not at.exception
    v2 = local_workspace.datasets.load("diabetes", 2)
    assert v2["Insulin"].isna().sum() == 100 and v2["BMI"].isna().sum() == 6
    assert (v2["Pregnancies"] == 0).sum() == (frame["Pregnancies"] == 0).sum() > 0
    assert local_workspace.datasets.missing_numbers("diabetes", 2) == {
        "Insulin": [0.0],
        "BMI": [0.0],
    }


def test_the_sample_is_read_again_with_pdays_999_as_missing(local_workspace, bank_csv) -> None:
    """Bank Marketing writes 999 in pdays for "never contacted": the one click re-reads the
    sample itself, not whatever the file picker holds."""
    at = open_page("datasets.py")
    button(at, "Add the Bank Marketing sample").click().run()
    assert any("pdays = 999 in 31,728 rows" in w.value for w in at.warning)
    button(at, "Register again with pdays=999 as missing").click().run()
    assert not at.exception
    assert any("bankmarketing v2**" in s.value for s in at.success)
    pdays = local_workspace.datasets.load("bankmarketing", 2)["pdays"]
    assert pdays.isna().sum() == 31_728
