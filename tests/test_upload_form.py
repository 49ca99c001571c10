import io
from dataclasses import dataclass

from lib.tabular import MISSING_TOKENS
from lib.upload_form import (
    default_dataset_name,
    default_token_text,
    has_digest,
    identical_version,
    layout_notes,
    recognised_summary,
    tokens_from_form,
    with_tokens,
)


@dataclass
class Version:
    version: int
    sha256: str


def test_default_dataset_name() -> None:
    assert default_dataset_name("Titanic 3 (final).csv") == "Titanic-3-final"
    assert default_dataset_name("...csv") == "dataset"


def test_tokens_from_the_form() -> None:
    # the form's text gives back the default list, the empty cell included
    assert tokens_from_form(default_token_text()) == list(MISSING_TOKENS)
    assert {"NA", "?", "#N/A", "."} <= set(MISSING_TOKENS)
    assert tokens_from_form(" ?, unknown ,,", empty_is_missing=False) == ["?", "unknown"]


def test_identical_version_is_the_newest_with_the_same_bytes() -> None:
    import hashlib

    digest = hashlib.sha256(b"abc").hexdigest()
    versions = [Version(1, digest), Version(2, "other"), Version(3, digest)]
    assert identical_version(versions, b"abc") == Version(3, digest)
    assert identical_version(versions, b"abd") is None
    assert has_digest(b"abc", digest) and not has_digest(b"abd", digest)


def test_recognised_summary_lists_columns_with_missing_cells() -> None:
    rows = [{"column": f"c{i}", "missing_tokens": '"?" (1)'} for i in range(14)]
    rows.append({"column": "clean", "missing_tokens": ""})
    text = recognised_summary(rows)
    assert text.startswith('**c0**: "?" (1) · **c1**')
    assert text.endswith("and 2 more columns") and "clean" not in text


def test_layout_notes_say_where_the_table_was_found() -> None:
    import gzip

    plain = b"a,b\n1,2\n"
    assert layout_notes("t.csv", plain) == []
    notes = " ".join(layout_notes("t.csv.gz", gzip.compress(b"Date,x,Date\n2024-01-05,1,2\n")))
    assert "gzip-compressed" in notes and "the repeats are named **Date_2**" in notes
    assert "kept as uploaded" in notes
    import lzma
    import zipfile

    assert "xz-compressed" in " ".join(layout_notes("t.csv.xz", lzma.compress(plain)))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("test.csv", "train.csv", "sample_submission.csv"):
            z.writestr(name, plain)
    notes = " ".join(layout_notes("contest.zip", archive.getvalue()))
    assert "Read **train.csv**, the training table of the zip archive" in notes
    assert "not read: **test.csv**, **sample_submission.csv**" in notes
    two = b",X1,X2\nID,LIMIT_BAL,AGE\n1,20000,24\n2,120000,26\n3,90000,34\n"
    assert "span two rows" in " ".join(layout_notes("credit.csv", two))
    assert "not column names" in " ".join(
        layout_notes("heart.data", b"63.0,1.0,145.0\n67.0,1.0,160.0\n")
    )
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["Survey 2023"])
    data = book.create_sheet("Data")
    for row in (["a", "b"], [1, "x"], [2, "y"]):
        data.append(row)
    saved = io.BytesIO()
    book.save(saved)
    said = " ".join(layout_notes("survey.xlsx", saved.getvalue()))
    assert "Read the sheet **Data**" in said and "Not read: the sheets **Cover**" in said
    fixed = b"NAME        AGE  CITY\nJohn Smith   34  New York\nAnn Lee      51  San Jose\nBo Li        29  Boston\n"
    assert "fixed-width text" in " ".join(layout_notes("people.txt", fixed))
    report = b"region,units,price\nNorth,3,1.5\nSouth,4,2.5\nTotal,7,\n\nSource: survey\n"
    assert "last 2 rows below the table hold notes or totals" in " ".join(
        layout_notes("report.csv", report)
    )
    one = b"region,units,price\nNorth,3,1.5\nSouth,4,2.5\nEast,5,1.0\nTotal,12,\n"
    assert "The last row holds notes or totals, not data: left out." in layout_notes("one.csv", one)


def test_words_are_added_to_the_token_text_once() -> None:
    assert with_tokens("NA, ?", ["refused", "?", "Refused"]) == "NA, ?, refused"
    assert with_tokens("NA, Refused", ["refused"]) == "NA, Refused"
    assert with_tokens("", ["<0.5"]) == "<0.5"
