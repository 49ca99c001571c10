import bz2
import codecs
import gzip
import io
import json
import lzma
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.settings import UploadLimits
from lib.tabular import (
    SNIFF_MAX_BYTES,
    TableError,
    date_formats,
    detect_format,
    layout_of,
    parse_table,
    profile_frame,
    profile_records,
    sentinel_values,
    to_parquet_bytes,
)
from lib.upload_form import layout_notes


def test_sniffs_semicolon_and_tab_delimiters() -> None:
    semi = parse_table("a.csv", b"x;y;label\n1;2.5;yes\n3;4.5;no\n")
    assert list(semi.frame.columns) == ["x", "y", "label"]
    assert semi.delimiter == ";"
    assert semi.frame["y"].tolist() == [2.5, 4.5]
    tab = parse_table("a.tsv", b"x\ty\n1\t2\n3\t4\n")
    assert tab.delimiter == "\t" and tab.frame.shape == (2, 2)


def test_excel_separator_line_names_the_delimiter() -> None:
    parsed = parse_table("x.csv", b"\xef\xbb\xbfsep=;\r\na;b,c\r\n1;2,5\r\n3;4\r\n")
    assert parsed.delimiter == ";" and parsed.columns == ["a", "b,c"]
    assert parsed.frame["a"].tolist() == [1, 3] and parsed.frame["b,c"].tolist() == [2.5, 4.0]


def test_single_column_csv() -> None:
    parsed = parse_table("one.csv", b"value\n1\n2\n3\n")
    assert parsed.frame["value"].tolist() == [1, 2, 3]


def test_text_encodings_spreadsheets_and_editors_write() -> None:
    # Windows-1252, as spreadsheets on Windows save CSV: the euro sign is byte 0x80
    windows = "city,price\nZürich,€5\nMálaga,€7\n".encode("cp1252")
    parsed = parse_table("w.csv", windows)
    assert parsed.encoding == "cp1252"
    assert parsed.frame["city"].tolist() == ["Zürich", "Málaga"]
    assert parsed.frame["price"].tolist() == [5.0, 7.0]
    # a byte Windows-1252 leaves undefined: Latin-1, which decodes every byte
    latin = "city,n\nZürich,1\nMálaga,2\n".encode("latin-1") + b"x\x81,3\n"
    parsed = parse_table("l.csv", latin)
    assert parsed.encoding == "latin-1"
    assert parsed.frame["city"].tolist() == ["Zürich", "Málaga", "x\x81"]
    bom = "\ufeffcity,n\nZürich,1\n".encode()
    parsed = parse_table("u.csv", bom)
    assert parsed.encoding == "utf-8"
    assert list(parsed.frame.columns) == ["city", "n"]
    # "Unicode text" from a spreadsheet: UTF-16 with a byte-order mark, tab-separated
    for codec in ("utf-16-le", "utf-16-be"):
        bom16 = "\ufeff".encode(codec)
        text = bom16 + "city\tn\tprice\r\nZürich\t1\t2,5\r\n東京\t2\t3\r\n".encode(codec)
        parsed = parse_table("unicode.txt", text)
        assert parsed.encoding == "utf-16"
        assert parsed.frame["city"].tolist() == ["Zürich", "東京"]
        assert parsed.frame["n"].tolist() == [1, 2]
    with pytest.raises(TableError, match="UTF-16"):
        parse_table(
            "broken.txt", codecs.BOM_UTF16_LE + "ab,c\n1,2\n".encode("utf-16-le") + b"\x00\xd8"
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,2\n\x00\x01\x02", "binary"),
    ],
)
def test_bad_csv_is_rejected_with_reason(data: bytes, message: str) -> None:
    with pytest.raises(TableError, match=message):
        parse_table("bad.csv", data)


def test_a_file_without_a_header_row_is_read_as_data() -> None:
    """UCI's `.data` files and R's `col.names = FALSE` have no header row: the first row is
    values, read as data, and the columns are named by position."""
    adult = (
        b"39, State-gov, 77516, Bachelors, <=50K\n"
        b"50, Self-emp-not-inc, 83311, Bachelors, <=50K\n"
        b"38, Private, 215646, HS-grad, <=50K\n"
        b"53, Private, 234721, 11th, >50K\n"
        b"28, ?, 338409, Bachelors, >50K\n"
    )
    parsed = parse_table("adult.data", adult)
    assert not parsed.header_row and parsed.rows == 5
    assert parsed.columns == ["column_1", "column_2", "column_3", "column_4", "column_5"]
    assert parsed.frame["column_1"].tolist() == [39, 50, 38, 53, 28]
    assert parsed.frame["column_4"].tolist()[:2] == ["Bachelors", "Bachelors"]
    # all numbers, with a fraction, "?" for missing (the Cleveland heart data)
    heart = b"63.0,1.0,145.0,?,0\n67.0,1.0,160.0,3.0,2\n37.0,1.0,130.0,0.0,0\n"
    parsed = parse_table("processed.cleveland.data", heart)
    assert not parsed.header_row and parsed.rows == 3
    assert parsed.frame["column_4"].isna().tolist() == [True, False, False]
    # semicolons
    parsed = parse_table("x.csv", b"7.4;0.70;5;red\n7.8;0.88;5;red\n7.8;0.76;6;white\n")
    assert not parsed.header_row and parsed.frame["column_1"].tolist() == [7.4, 7.8, 7.8]
    # a single row of values
    assert not parse_table("one.csv", b"1,2,3\n").header_row


@pytest.mark.parametrize(
    "data",
    [
        b"age,plan,y\n39,basic,no\n50,pro,yes\n",  # names above values
        b"country,1952,1957\nAfghanistan,28.8,30.3\nAlbania,55.2,59.3\n",  # years as names
        b",a,b\n0,x,1\n1,y,2\n",  # a saved index under a blank name
        b"name;size\nbig;1,5\nsmall;0,5\n",  # semicolons and decimal commas
        b"a,b\n1,2\n",
        b"x\n1\n2\n",  # one column
    ],
)
def test_a_header_row_is_a_header_row(data: bytes) -> None:
    parsed = parse_table("t.csv", data)
    assert parsed.header_row
    assert parsed.columns == [
        c.decode() or "column_1" for c in data.split(b"\n")[0].split(b";" if b";" in data else b",")
    ]


def test_spaces_around_text_values_are_not_part_of_them() -> None:
    """Files written with ", " between fields: categories, targets and missing values read as
    they would without the spaces."""
    data = b"age, workclass, income\n39, State-gov, <=50K\n50, Private , >50K\n28, ?, >50K\n"
    frame = parse_table("adult.csv", data).frame
    assert frame.columns.tolist() == ["age", "workclass", "income"]
    assert frame["age"].tolist() == [39, 50, 28]
    assert frame["workclass"].tolist()[:2] == ["State-gov", "Private"]
    assert pd.isna(frame["workclass"].iloc[2])  # " ?" is a missing workclass
    assert frame["income"].tolist() == ["<=50K", ">50K", ">50K"]


def test_lines_ended_by_carriage_returns_alone() -> None:
    """A classic Mac "CSV (Macintosh)" file ends its lines with a carriage return alone."""
    parsed = parse_table("mac.csv", b"a,b,c\r1,x,2.5\r2,y,3.5\r")
    assert parsed.rows == 2
    assert parsed.frame["c"].tolist() == [2.5, 3.5]
    assert parsed.frame["b"].tolist() == ["x", "y"]


def test_repeated_column_names_are_numbered() -> None:
    """Report exports repeat names (two `Date` columns); nothing is refused or lost."""
    parsed = parse_table("r.csv", b"Date,amount,Date,Date_2,\n2024-01-05,5,x,y,1\n")
    assert parsed.columns == ["Date", "amount", "Date_3", "Date_2", "column_5"]
    assert parsed.frame["Date_3"].tolist() == ["x"]
    assert layout_of("r.csv", b"Date,amount,Date,Date_2,\n2024-01-05,5,x,y,1\n").renamed == (
        "Date_3",
    )
    sheet = _workbook([["a", "b", "a"], [1, 2, 3]])
    assert parse_table("s.xlsx", sheet).columns == ["a", "b", "a_2"]
    assert layout_of("s.xlsx", sheet).renamed == ("a_2",)
    # a blank name beside a column_N name
    assert parse_table("i.csv", b"column_2,,c\n1,2,3\n").columns == [
        "column_2",
        "column_2_2",
        "c",
    ]


def test_blank_header_names_are_named_by_position() -> None:
    """`DataFrame.to_csv()` writes its index under a blank name; a trailing comma adds one
    (with a value in it, it is a column)."""
    parsed = parse_table("indexed.csv", b",a,b,\n0,1,x,\n1,2,y,7\n")
    assert parsed.columns == ["column_1", "a", "b", "column_4"]
    assert parsed.frame["column_1"].tolist() == [0, 1] and parsed.frame["b"].tolist() == ["x", "y"]
    assert parsed.frame["column_4"].isna().tolist() == [True, False]


def test_a_delimiter_ending_every_data_row_but_not_the_header_shifts_nothing() -> None:
    """Some exporters end each data row with a delimiter the header row lacks: the values
    stay under their names (they were shifted left, the first column taken for an index)."""
    parsed = parse_table("export.csv", b"id,amount,y\n1,20.5,no\n2,7,yes\n3,1,no\n")
    shifted = parse_table("export.csv", b"id,amount,y\n1,20.5,no,\n2,7,yes,\n3,1,no,\n")
    assert shifted.frame.equals(parsed.frame) and shifted.missing == {}
    # A value in the extra field later on: kept as a column of its own, nothing lost.
    late = b"id,amount,y\n1,20.5,no,\n2,7,yes,\n3,1,no,\n" + b"4,2,yes,late\n"
    frame = parse_table("export.csv", late).frame
    assert frame["id"].tolist() == [1, 2, 3, 4] and frame["column_4"].tolist()[3] == "late"
    # R's write.table with row names: the extra field is the first and holds the names.
    named = parse_table("r.txt", b"a,b\nr1,1,2\nr2,3,4\nr3,5,6\n").frame
    assert named["a"].tolist() == [1, 3, 5] and named["b"].tolist() == [2, 4, 6]


def test_a_password_protected_workbook_is_refused_saying_so() -> None:
    """Excel saves a protected .xlsx as an OLE file with an `EncryptedPackage` stream."""
    sectors = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + bytes(1024))
    name = "EncryptedPackage".encode("utf-16-le")
    sectors[512 : 512 + len(name)] = name  # a directory entry
    with pytest.raises(TableError, match="password-protected"):
        parse_table("salaries.xlsx", bytes(sectors))


def test_a_text_file_named_as_a_workbook_is_read_as_what_it_is() -> None:
    """Systems export tab-separated text as `report.xls` so that Excel opens it."""
    parsed = parse_table("report.xls", b"id\tamount\n1\t2.5\n2\t3\n")
    assert parsed.file_format == "csv" and parsed.frame["amount"].tolist() == [2.5, 3.0]
    html = b"<html><body><table><tr><td>id</td><td>amount</td></tr><tr><td>1</td><td>2.5</td>"
    html += b"</tr><tr><td>2</td><td>3</td></tr></table></body></html>"
    parsed = parse_table("report.xls", html)  # a web application's "export to Excel"
    assert parsed.file_format == "html" and parsed.frame["amount"].tolist() == [2.5, 3.0]


WEB_TABLE = b"""<!DOCTYPE html><html><head><title>GDP</title><style>td {color: red}</style>
</head><body><table class="nav"><tr><td>Home</td><td>About</td></tr></table>
<table class="wikitable">
<tr><th rowspan="2">Country</th><th colspan="2">GDP (US$ million)</th><th rowspan="2">Region</th></tr>
<tr><th>2022</th><th>2023</th></tr>
<tr><td><a href="/us">United States</a>[1]</td><td>25,462,700</td><td>26,949,643</td>
<td rowspan="2">Americas</td></tr>
<tr><td>Canada</td><td>2,139,840</td><td>&minus;</td></tr>
<tr><td>Germany<sup>[a]</sup></td><td>4,082,469</td><td>4,429,838</td><td>Europe</td></tr>
</table><script>var t = "<table>";</script></body></html>"""


def test_a_web_pages_table_is_read_as_a_browser_shows_it() -> None:
    """A table saved from a web page: the biggest table, spans repeated, footnotes left out."""
    parsed = parse_table("gdp.html", WEB_TABLE)
    assert parsed.file_format == "html"
    assert parsed.columns == [
        "Country",
        "GDP (US$ million) 2022",
        "GDP (US$ million) 2023",
        "Region",
    ]
    frame = parsed.frame
    assert frame["Country"].tolist() == ["United States", "Canada", "Germany"]
    assert frame["GDP (US$ million) 2023"].tolist()[::2] == [26949643, 4429838]
    assert pd.isna(frame["GDP (US$ million) 2023"].iloc[1])  # a dash: no value
    assert frame["Region"].tolist() == ["Americas", "Americas", "Europe"]
    spans = b"<table><tr>" + b'<td colspan="1000">x</td>' * 40 + b"</tr><tr><td>1</td></tr></table>"
    with pytest.raises(TableError, match="columns, over the limit of 20"):
        parse_table("wide.html", spans, limits=UploadLimits(max_columns=20))
    rows = b"<table>" + b"<tr><td>1</td><td>2</td></tr>" * 100 + b"</table>"
    with pytest.raises(TableError, match="more than 50 rows"):
        parse_table("long.html", rows, limits=UploadLimits(max_rows=50))
    with pytest.raises(TableError, match="decodes to more than"):
        parse_table("big.html", rows * 40, limits=UploadLimits(max_uncompressed_bytes=1 << 20))
    sign_in = b"<html><head><title>Sign in</title></head><body><form></form></body></html>"
    with pytest.raises(TableError, match="web page \\(HTML\\) without a table"):
        parse_table("data.csv", sign_in)


def test_a_report_sheets_merged_cells_read_as_the_sheet_shows_them() -> None:
    """`North` merged down over its three months is the region of all three rows; a merged
    title above a sparse table is still a title."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Sales report 2024"])
    sheet.append([])
    sheet.append(["region", "month", "sales"])
    rows = [["North", "Jan", 1], [None, "Feb", 2], [None, "Mar", 3], ["South", "Jan", 4]]
    for row in [*rows, [None, "Feb", None], ["West", "Jan", None]]:
        sheet.append(row)
    sheet.merge_cells("A1:C1")
    sheet.merge_cells("A4:A6")
    sheet.merge_cells("A7:A8")
    sheet.merge_cells("B9:C9")  # across, not down: nothing to fill
    raw = io.BytesIO()
    book.save(raw)
    parsed = parse_table("report.xlsx", raw.getvalue())
    assert parsed.title_rows == 2 and parsed.columns == ["region", "month", "sales"]
    frame = parsed.frame
    assert frame["region"].tolist() == ["North"] * 3 + ["South"] * 2 + ["West"]
    assert frame["sales"].tolist()[:4] == [1, 2, 3, 4] and frame["sales"].isna().sum() == 2


def test_a_sheets_empty_columns_between_the_table_and_a_note_are_left_out() -> None:
    """A note typed two columns right of the table: the empty columns between are nothing."""
    rows: list[list] = [["age", "y"]] + [[20 + i, "no"] for i in range(10)]
    rows[2] = [21, "no", None, None, None, "note: provisional"]
    parsed = parse_table("t.xlsx", _workbook(rows))
    assert parsed.columns == ["age", "y", "column_3"]  # the note keeps a column of its own
    assert parsed.frame["column_3"].count() == 1


def test_the_header_repeated_further_down_is_not_data() -> None:
    """Files joined with `cat`, reports that repeat the header on each page, tables stacked
    on one sheet: the repeats are left out and the numbers stay numbers."""
    one = b"age,income,y\r\n30,100,no\r\n40,200,yes\r\n"
    joined = one * 3
    parsed = parse_table("joined.csv", joined)
    assert parsed.columns == ["age", "income", "y"] and parsed.rows == 6
    assert str(parsed.frame["age"].dtype) == "int64" and parsed.missing == {}
    quoted = parse_table("q.csv", b'"age","y"\n1,"no"\n"age","y"\n2,"yes"\n').frame
    assert quoted["age"].tolist() == [1, 2]
    # A row that only starts like the header is data.
    assert parse_table("p.csv", b"a,b\n1,x\na,c\n").frame["a"].tolist() == ["1", "a"]
    stacked = _workbook([["age", "y"], [1, "no"], [], ["age", "y"], [2, "yes"], ["age", "y"]])
    sheet = parse_table("s.xlsx", stacked).frame
    assert sheet["age"].tolist() == [1, 2] and str(sheet["age"].dtype) == "int64"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (
            b"\n<!DOCTYPE html>\n<html><body><p>Sign in, then download.</p></body></html>\n",
            "web page",
        ),
        (b"<html>\n<p>Error 404, page not found</p>\n</html>", "web page"),
        (b'<?xml version="1.0"?>\n<rows><row a="1"/></rows>\n', "XML"),
        (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"Rar!\x1a\x07\x01\x00" + b"x" * 40, "RAR or 7-Zip"),
        (b"\x89PNG\r\n\x1a\n" + b"x" * 40, "image"),
    ],
)
def test_a_document_that_is_no_table_is_refused_saying_what_it_is(data: bytes, what: str) -> None:
    """Download links hand out sign-in pages and reports: they read as a one-column table."""
    with pytest.raises(TableError, match=what):
        parse_table("data.csv", data)
    with pytest.raises(TableError, match=what):
        parse_table("data.csv.gz", gzip.compress(data))
    assert parse_table("tags.csv", b"<b>,c\n1,2\n").columns == ["<b>", "c"]


def test_rows_with_no_value_inside_the_table_are_left_out() -> None:
    """Spreadsheets write `,,` for an empty row between blocks of data."""
    parsed = parse_table("blocks.csv", b"a,b,c\n1,x,\n,,\n2,y,z\n,,\n3,,w\n")
    assert parsed.frame["a"].tolist() == [1, 2, 3] and parsed.rows == 3
    assert parsed.missing == {"b": {"": 1}, "c": {"": 1}}
    assert parse_table("q.csv", b'a,b\n1,x\n"",""\n2,y\n').rows == 2
    # A row of missing-value tokens is a record (a respondent who answered nothing); a row
    # with one value is data.
    tokens = parse_table("na.csv", b"a,b\n1,x\nNA,NA\n2,\n").frame
    assert tokens["a"].isna().tolist() == [False, True, False]


def _workbook(rows: list[list], sheet_title: str = "data") -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_excel_workbook_reads_its_first_sheet_typed() -> None:
    import datetime as dt

    rows = [["", "age", "price", "joined", "member", "note", "y"]]
    for i in range(40):
        price = f"${1000 + i:,}.50" if i % 2 else 1000.5 + i  # text and numbers mixed
        rows.append(
            [
                i,
                "?" if i % 5 == 0 else 20 + i,
                price,
                dt.date(2024, 1, 1 + i % 28),
                i % 2 == 0,
                "x" if i % 3 == 0 else None,
                "yes" if i % 3 else "no",
            ]
        )
    rows += [[None] * 7, [None] * 7]  # formatted but empty rows at the end
    parsed = parse_table("book.xlsx", _workbook(rows))
    frame = parsed.frame
    assert parsed.file_format == "excel" and parsed.rows == 40
    assert parsed.columns == ["column_1", "age", "price", "joined", "member", "note", "y"]
    assert str(frame["age"].dtype) == "float64" and parsed.missing == {"age": {"?": 8}}
    assert frame["price"].tolist()[:3] == [1000.5, 1001.5, 1002.5]
    assert str(frame["joined"].dtype).startswith("datetime64")
    assert frame["joined"].iloc[1] == pd.Timestamp("2024-01-02")
    assert str(frame["member"].dtype) == "bool" and frame["y"].iloc[0] == "no"
    assert frame["note"].iloc[0] == "x" and pd.isna(frame["note"].iloc[1])
    # found by its bytes too, whatever the name says
    assert parse_table("upload", _workbook(rows)).file_format == "excel"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "not a readable spreadsheet"),
        (b"PK\x03\x04not really a zip", "not a readable spreadsheet"),
    ],
)
def test_files_no_spreadsheet_reader_can_read_are_refused_with_reason(
    data: bytes, message: str
) -> None:
    with pytest.raises(TableError, match=message):
        parse_table("book.xls", data)


def test_a_zip_bomb_workbook_is_refused() -> None:
    # A sheet that inflates far past the limit is refused from the zip's directory alone.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<row/>" * 3_000_000)
    limits = UploadLimits(max_uncompressed_bytes=1024 * 1024)
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(TableError, match="decodes to"):
        parse_table("bomb.xlsx", bomb.getvalue(), limits=limits)


def test_spreadsheet_columns_a_model_read_as_text_stay_text() -> None:
    """The Score page reads a model's categorical columns as text, from a spreadsheet too."""
    data = _workbook([["pclass", "fare", "code"], [1, 7.25, "A"], [3, 8.5, None], [None, 9, "?"]])
    kept = parse_table("s.xlsx", data, text_columns=["pclass", "fare", "code"]).frame
    assert kept["pclass"].tolist()[:2] == ["1", "3"] and pd.isna(kept["pclass"].iloc[2])
    assert kept["fare"].tolist() == ["7.25", "8.5", "9"]
    assert kept["code"].tolist()[::2] == ["A", "?"]  # a token is a value in a text column
    typed = parse_table("s.xlsx", data).frame
    assert str(typed["pclass"].dtype) == "float64" and typed["fare"].tolist() == [7.25, 8.5, 9.0]


def test_excel_row_and_header_limits() -> None:
    rows = [["a", "b"]] + [[i, i] for i in range(30)]
    with pytest.raises(TableError, match="over the limit of 20"):
        parse_table("long.xlsx", _workbook(rows), limits=UploadLimits(max_rows=20))
    with pytest.raises(TableError, match="no data rows"):
        parse_table("head.xlsx", _workbook([["a", "b"]]))
    # a value right of the header gets a column named after its position
    wide = parse_table("wide.xlsx", _workbook([["a"], [1, "stray"], [2]]))
    assert wide.columns == ["a", "column_2"] and wide.frame["column_2"].tolist()[0] == "stray"


def test_size_limit() -> None:
    with pytest.raises(TableError, match="over the 100 bytes limit"):
        parse_table("big.csv", b"a\n" + b"1\n" * 1000, max_bytes=100)


def test_parquet_round_trip_and_fake_parquet() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    data = to_parquet_bytes(frame)
    assert detect_format("anything.bin", data) == "parquet"
    parsed = parse_table("t.parquet", data)
    assert parsed.file_format == "parquet"
    pd.testing.assert_frame_equal(parsed.frame, frame)
    with pytest.raises(TableError, match="not a valid Parquet"):
        parse_table("fake.parquet", b"a,b\n1,2\n")


def test_profile_numbers_and_categories() -> None:
    frame = pd.DataFrame(
        {
            "num": [1.0, 2.0, None, 5.0],
            "cat": ["a", "b", "a", None],
            "flag": [True, False, True, True],
        }
    )
    prof = profile_frame(frame).set_index("column")
    assert prof.loc["num", "missing_pct"] == 25.0
    assert prof.loc["num", "min"] == 1.0 and prof.loc["num", "max"] == 5.0
    assert prof.loc["num", "mean"] == pytest.approx(8 / 3)
    assert sum(prof.loc["num", "histogram"]) == 3
    assert prof.loc["cat", "distinct"] == 2
    assert prof.loc["cat", "top_values"].startswith("a (2)")
    assert prof.loc["cat", "min"] is None or pd.isna(prof.loc["cat", "min"])
    assert prof.loc["flag", "histogram"] == [3, 1]


def test_bank_marketing_parses(bank_csv) -> None:
    parsed = parse_table(bank_csv.name, bank_csv.read_bytes())
    assert parsed.frame.shape == (32950, 21)
    assert "y" in parsed.frame.columns
    assert set(parsed.frame["y"].unique()) == {"yes", "no"}
    assert isinstance(io.BytesIO(to_parquet_bytes(parsed.frame)).getvalue(), bytes)


# --- missing-value tokens and column types --------------------------------------------------

TITANIC = (
    b"name,age,fare,boat,embarked\n"
    b"Allen,29,211.3375,2,S\n"
    b"Allison,?,151.55,?,S\n"
    b"Andrews, 39 ,0,-,S\n"
    b"Appleton,NA,?,D,?\n"
    b"Artagaveytia,71,49.5042,,C\n"
)


def test_titanic_question_marks_are_missing_numbers() -> None:
    parsed = parse_table("titanic.csv", TITANIC)
    frame = parsed.frame
    assert str(frame["age"].dtype) == "float64"
    assert frame["age"].isna().tolist() == [False, True, False, True, False]
    assert frame["age"].iloc[2] == 39.0  # padded number still read as a number
    assert str(frame["fare"].dtype) == "float64" and frame["fare"].isna().sum() == 1
    assert parsed.missing["age"] == {"?": 1, "NA": 1}
    assert parsed.missing["fare"] == {"?": 1}
    # In text columns "?" is missing too; "NA" as well, since this file writes it for a
    # missing age; "-" only stands for missing in text here, so it is a value.
    assert frame["embarked"].isna().tolist() == [False, False, False, True, False]
    assert frame["boat"].tolist()[2:4] == ["-", "D"]
    assert frame["boat"].isna().tolist() == [False, True, False, False, True]
    assert parsed.missing["boat"] == {"": 1, "?": 1}
    assert parsed.missing["embarked"] == {"?": 1}


def test_what_spreadsheets_and_statistics_packages_write_for_missing_is_missing() -> None:
    # a CSV saved from a spreadsheet keeps #N/A and formula errors; Stata and SAS print "."
    data = (
        b"income,ratio,visits,when,team\n"
        b"52000,0.5,3,2024-01-05,#N/A\n"
        b"#N/A,#DIV/0!,.,#VALUE!,b\n"
        b"61000,#n/a,--,<NA>,c\n"
        b"#REF!,0.25,7,2024-02-01,d\n"
    )
    parsed = parse_table("export.csv", data)
    frame = parsed.frame
    assert str(frame["income"].dtype) == "float64"
    assert frame["income"].isna().tolist() == [False, True, False, True]
    assert frame["ratio"].tolist()[::3] == [0.5, 0.25] and frame["ratio"].isna().sum() == 2
    assert frame["visits"].isna().tolist() == [False, True, True, False]
    assert str(frame["when"].dtype).startswith("datetime64") and frame["when"].isna().sum() == 2
    assert parsed.missing["ratio"] == {"#DIV/0!": 1, "#n/a": 1}
    assert parsed.missing["visits"] == {".": 1, "--": 1}
    assert parse_table("m.csv", b"n,s\n1,x\n\\N,\\N\n").frame.isna().sum().tolist() == [1, 1]
    # a C library's (null), a pivot table's (blank), pandas' own #N/A N/A, a report's ---
    others = b"n,s\n1,x\n(null),(null)\n(blank),(blank)\n#N/A N/A,<null>\n---,---\n5,y\n"
    read = parse_table("o.csv", others)
    assert read.frame["n"].tolist()[::5] == [1, 5] and read.frame.isna().sum().tolist() == [4, 4]
    # the US Census Bureau's "not applicable" and "no margin of error"
    census = parse_table("acs.csv", b"est,moe\n1200,*****\n(X),85\n900,40\n").frame
    assert census["moe"].tolist()[1:] == [85, 40] and census.isna().sum().tolist() == [1, 1]
    # no one writes them as a value: missing in a text column too
    assert pd.isna(frame["team"].iloc[0]) and frame["team"].tolist()[1:] == ["b", "c", "d"]
    assert parsed.missing["team"] == {"#N/A": 1}


def test_tokens_in_text_columns_are_missing_unless_a_category_can_be_them() -> None:
    """Placeholders are missing in text; `NA`, `None`, `-` and `.` only where the file writes
    them for missing numbers too; the operator's own tokens everywhere."""
    data = (
        b"region,veneer,job,grade,rooms,note\n"
        b"NA,None,admin.,-,3,n/a\n"
        b"EU,Stone,retired,a,4,NULL\n"
        b"NA,None,technician,b,5,ok\n"
        b"EU,None,retired,c,6,ok\n"
    )
    parsed = parse_table("houses.csv", data)
    frame = parsed.frame
    assert frame["region"].tolist() == ["NA", "EU", "NA", "EU"]  # North America
    assert frame["veneer"].tolist() == ["None", "Stone", "None", "None"]
    assert frame["grade"].tolist()[0] == "-" and frame["job"].tolist()[1] == "retired"
    assert frame["note"].isna().tolist() == [True, True, False, False]
    assert parsed.missing == {"note": {"n/a": 1, "NULL": 1}}
    offered = {v for c in parsed.table.column("note").chunks for v in c.dictionary.to_pylist()}
    assert offered == {"ok"}  # no "n/a" left to offer on the Score form
    # The same words written for a missing number: the file's way of writing missing.
    numbers = data.replace(b"b,5,ok", b"b,NA,ok").replace(b"c,6,ok", b"c,-,ok")
    parsed = parse_table("houses.csv", numbers)
    assert parsed.frame["region"].isna().tolist() == [True, False, True, False]
    assert pd.isna(parsed.frame["grade"].iloc[0])
    assert parsed.frame["veneer"].tolist()[0] == "None"
    assert parsed.missing["region"] == {"NA": 2} and parsed.missing["rooms"] == {"NA": 1, "-": 1}
    # Only as the file writes them: sodium's "Na" beside a missing "NA", a person named Nan.
    lab = parse_table("lab.csv", b"test,who,value\nNa,Nan,NA\nK,Li,4.1\nNA,NaN,5\n").frame
    assert lab["test"].tolist()[:2] == ["Na", "K"] and pd.isna(lab["test"].iloc[2])
    assert lab["who"].tolist()[:2] == ["Nan", "Li"] and pd.isna(lab["who"].iloc[2])
    # R's write.csv quotes text and writes a missing value as a bare NA, numbers or not.
    r_export = b'"sex","region","age"\n"male",NA,31\n"female","EU",40\n"male","EU",22\n'
    parsed = parse_table("r.csv", r_export)
    assert parsed.frame["region"].isna().tolist() == [True, False, False]
    assert parsed.missing == {"region": {"NA": 1}}
    # A spreadsheet quotes only what needs it: Namibia's NA beside a quoted address is a value.
    excel = b'address,country\n"1 Main St, Windhoek",NA\n"2 High St, Leeds",UK\n'
    assert parse_table("x.csv", excel).frame["country"].tolist() == ["NA", "UK"]
    # An added token is missing wherever it is; a removed one nowhere.
    own = parse_table("houses.csv", data, missing_tokens=["", "retired"])
    assert own.frame["job"].isna().tolist() == [False, True, False, True]
    assert own.frame["note"].tolist()[:2] == ["n/a", "NULL"]
    # A column the operator keeps as written keeps them.
    kept = parse_table("houses.csv", data, text_columns=["note"]).frame
    assert kept["note"].tolist()[:2] == ["n/a", "NULL"]


def test_tokens_in_text_columns_of_workbooks_and_parquet() -> None:
    workbook = _workbook([["age", "cabin"], [22, "C85"], ["?", "?"], [30, "null"], [4, "B2"]])
    parsed = parse_table("t.xlsx", workbook)
    assert parsed.frame["cabin"].isna().tolist() == [False, True, True, False]
    assert parsed.missing["cabin"] == {"?": 1, "null": 1}
    buffer = io.BytesIO()
    pd.DataFrame({"n": [1, 2, 3], "c": ["x", "?", None]}).to_parquet(buffer)
    parsed = parse_table("t.parquet", buffer.getvalue())
    assert parsed.frame["c"].isna().tolist() == [False, True, True]
    assert parsed.missing["c"] == {"?": 1}


def test_a_numeric_token_is_missing_by_value_in_number_columns() -> None:
    """Weather stations write -999 or 9999 for "not measured": a token the operator types is
    matched by value in number columns (-999.0, a workbook's number cell), as text elsewhere."""
    tokens = ["", "NA", "-999", "9999"]
    data = b"temp,rain,station,reading\n21.5,-999,-999,1\n-999.0,3,KX,2\n19,99990,9999,3\n"
    parsed = parse_table("w.csv", data, missing_tokens=tokens)
    frame = parsed.frame
    assert frame["temp"].isna().tolist() == [False, True, False]
    assert frame["rain"].isna().tolist() == [True, False, False]  # 99990 is not 9999
    assert str(frame["rain"].dtype) == "float64" and frame["rain"].iloc[2] == 99990
    assert frame["station"].isna().tolist() == [True, False, True]  # text: as written
    assert frame["reading"].tolist() == [1, 2, 3]
    assert parsed.missing == {
        "temp": {"-999": 1},
        "rain": {"-999": 1},
        "station": {"-999": 1, "9999": 1},
    }
    assert sentinel_values(parsed.missing, parsed.table.schema) == {
        "temp": [-999.0],
        "rain": [-999.0],
    }
    # Without the token -999 is a temperature like any other.
    assert parse_table("w.csv", data).frame["temp"].iloc[1] == -999
    workbook = _workbook([["depth", "site"], [-999, "a"], [12.5, "b"], [3, "c"]])
    assert parse_table("w.xlsx", workbook, missing_tokens=tokens).frame[
        "depth"
    ].isna().tolist() == [True, False, False]
    buffer = io.BytesIO()
    pd.DataFrame({"n": [9999, 2, 3], "f": [1.5, -999.0, 2.0]}).to_parquet(buffer)
    parsed = parse_table("w.parquet", buffer.getvalue(), missing_tokens=tokens)
    assert parsed.frame.isna().to_numpy().tolist() == [[True, False], [False, True], [False, False]]
    assert parsed.missing == {"n": {"9999": 1}, "f": {"-999": 1}}


def test_missing_tokens_are_the_operators_choice() -> None:
    without_question_mark = parse_table(
        "t.csv", TITANIC, missing_tokens=["", "NA"]
    ).frame  # "?" is a value now: age and fare are text
    assert str(without_question_mark["age"].dtype) == "str"
    data = b"score,grade\n1.5,a\nrefused,b\n3,c\n"
    assert str(parse_table("u.csv", data).frame["score"].dtype) == "str"
    custom = parse_table("u.csv", data, missing_tokens=["", "Refused"])
    assert custom.frame["score"].isna().tolist() == [False, True, False]
    assert custom.missing == {"score": {"refused": 1}}


def test_datetime_columns_are_detected() -> None:
    data = (
        b"when,us_date,stamp,label\n"
        b"2024-01-05,01/31/2024,2024-01-05 10:00:00,a\n"
        b"2024-02-29,12/01/2023,N/A,b\n"
        b",02/02/2024,2024-03-01T08:30:00,c\n"
    )
    parsed = parse_table("d.csv", data)
    frame = parsed.frame
    assert all(str(frame[c].dtype).startswith("datetime64") for c in ("when", "us_date", "stamp"))
    assert frame["us_date"].iloc[0] == pd.Timestamp("2024-01-31")
    assert frame["when"].isna().tolist() == [False, False, True]
    assert parsed.missing["stamp"] == {"N/A": 1}
    prof = profile_records(parsed.table, parsed.missing)
    kinds = {r["column"]: r["kind"] for r in prof}
    assert kinds == {
        "when": "datetime",
        "us_date": "datetime",
        "stamp": "datetime",
        "label": "text",
    }
    when = next(r for r in prof if r["column"] == "when")
    assert when["top_values"] == "2024-01-05 … 2024-02-29" and when["missing_pct"] == 33.33
    dotted = parse_table("k.csv", b"day,n\n2024.01.05,1\n2024.12.31,2\n").frame
    assert dotted["day"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-12-31")]


def test_dates_written_out_in_words_or_with_short_years() -> None:
    data = (
        b"us_words,eu_words,oracle,us_short,eu_short,not_dates\n"
        b'"Jan 5, 2024",5 January 2024,05-JAN-24,1/5/24,31/01/24,Jan 5\n'
        b'"February 29, 2024",29 February 2024,29-Feb-24,12/31/99,01/02/24,Feb 29\n'
    )
    parsed = parse_table("d.csv", data)
    frame = parsed.frame
    first = {c: frame[c].iloc[0] for c in frame.columns}
    assert first == {
        "us_words": pd.Timestamp("2024-01-05"),
        "eu_words": pd.Timestamp("2024-01-05"),
        "oracle": pd.Timestamp("2024-01-05"),
        "us_short": pd.Timestamp("2024-01-05"),
        "eu_short": pd.Timestamp("2024-01-31"),
        "not_dates": "Jan 5",
    }
    assert frame["us_words"].iloc[1] == pd.Timestamp("2024-02-29")
    assert frame["us_short"].iloc[1] == pd.Timestamp("1999-12-31")
    assert date_formats(parsed.table.schema)["us_short"] == "%m/%d/%y"


def test_date_and_time_as_portals_and_local_spreadsheets_write_them() -> None:
    """US open-data exports (`01/05/2024 02:35:00 PM`), 12-hour clocks day first, dashes and
    dots with a time: datetimes, each kept with the format a client may send again."""
    data = (
        b"portal,short_pm,uk_pm,us_dash,in_dash,de_dot,asia,bad_hour\n"
        b"01/05/2024 02:35:00 PM,1/5/2024 2:35 pm,31/01/2024 2:35 PM,01-31-2024,"
        b"31-01-2024 14:35,31.01.2024 14:35,2024/01/31 14:35,1/5/2024 13:35 PM\n"
        b"07/04/2024 12:00:00 AM,7/4/2024 12:00 AM,04/07/2024 11:59 PM,07-04-2024,"
        b"04-07-2024 23:59,04.07.2024 23:59,2024/07/04 23:59,7/4/2024 1:00 AM\n"
    )
    parsed = parse_table("d.csv", data)
    frame = parsed.frame
    first = {c: frame[c].iloc[0] for c in frame.columns}
    assert first == {
        "portal": pd.Timestamp("2024-01-05 14:35"),
        "short_pm": pd.Timestamp("2024-01-05 14:35"),
        "uk_pm": pd.Timestamp("2024-01-31 14:35"),
        "us_dash": pd.Timestamp("2024-01-31"),
        "in_dash": pd.Timestamp("2024-01-31 14:35"),
        "de_dot": pd.Timestamp("2024-01-31 14:35"),
        "asia": pd.Timestamp("2024-01-31 14:35"),
        "bad_hour": "1/5/2024 13:35 PM",  # no 13 o'clock on a 12-hour clock: text
    }
    assert frame["portal"].iloc[1] == pd.Timestamp("2024-07-04 00:00")  # 12 AM is midnight
    assert frame["in_dash"].iloc[1] == pd.Timestamp("2024-07-04 23:59")
    formats = date_formats(parsed.table.schema)
    assert formats["portal"] == "%m/%d/%Y %I:%M:%S %p" and formats["uk_pm"] == "%d/%m/%Y %I:%M %p"
    # BigQuery names the zone: ISO 8601 in UTC, fractions of a second and all.
    bq = b"at,n\n2024-01-05 14:35:00 UTC,1\n2024-07-04 00:00:00.250 UTC,2\n2024-07-05 08:00:00 GMT,3\n"
    stamps = parse_table("bq.csv", bq).frame["at"]
    assert stamps.tolist()[:2] == [
        pd.Timestamp("2024-01-05 14:35", tz="UTC"),
        pd.Timestamp("2024-07-04 00:00:00.250", tz="UTC"),
    ]


def test_months_are_dates() -> None:
    """A loan's issue month, a report's period: the first day of the month."""
    data = (
        b"issue_month,period,excel,iso,slash,label\n"
        b"Mar-2018,January 2019,Mar-18,2018-03,3/2018,Q1\n"
        b"Dec-2017,March 2020,Dec-17,2017-12,12/2017,Q2\n"
    )
    parsed = parse_table("loans.csv", data)
    frame = parsed.frame
    for column in ("issue_month", "excel", "iso", "slash"):
        assert frame[column].tolist() == [pd.Timestamp("2018-03-01"), pd.Timestamp("2017-12-01")]
    assert frame["period"].tolist() == [pd.Timestamp("2019-01-01"), pd.Timestamp("2020-03-01")]
    assert frame["label"].tolist() == ["Q1", "Q2"]
    assert date_formats(parsed.table.schema)["issue_month"] == "%b-%Y"


def test_times_of_day_are_datetimes_and_scores_are_not() -> None:
    data = (
        b"time,seconds,clock,score,duration\n"
        b"14:35,14:35:20,2:35 PM,2:1,125:30:00\n"
        b"09:05,09:05:00,11:05 am,3:0,1:15:00\n"
    )
    parsed = parse_table("t.csv", data)
    frame = parsed.frame
    assert frame["time"].tolist() == [
        pd.Timestamp("1900-01-01 14:35"),
        pd.Timestamp("1900-01-01 09:05"),
    ]
    assert frame["seconds"].iloc[0] == pd.Timestamp("1900-01-01 14:35:20")
    assert frame["clock"].tolist() == [
        pd.Timestamp("1900-01-01 14:35"),
        pd.Timestamp("1900-01-01 11:05"),
    ]
    assert frame["score"].tolist() == ["2:1", "3:0"]
    assert frame["duration"].tolist() == ["125:30:00", "1:15:00"]
    assert date_formats(parsed.table.schema)["time"] == "%H:%M"


def test_a_non_iso_date_format_is_kept_with_the_column(tmp_path) -> None:
    """A model trained on the column reads that text from clients: the format is stored."""
    data = b"when,us_date,day_first\n2024-01-05,01/31/2024,31.01.2024\n2024-02-29,12/01/2023,\n"
    parsed = parse_table("d.csv", data)
    assert date_formats(parsed.table.schema) == {"us_date": "%m/%d/%Y", "day_first": "%d.%m.%Y"}
    # Parquet uploads with date text get the same.
    parquet = tmp_path / "up.parquet"
    pq.write_table(pa.table({"d": ["31/01/2024", "01/02/2024"], "x": [1, 2]}), parquet)
    assert date_formats(parse_table("up.parquet", parquet.read_bytes()).table.schema) == {
        "d": "%d/%m/%Y"
    }


def test_booleans_integers_and_all_empty_columns() -> None:
    data = b"flag,n,nothing,big\nTrue,1,,1e3\nfalse,2,,2.5\nTRUE,3,,-1\n"
    frame = parse_table("b.csv", data).frame
    assert frame["flag"].tolist() == [True, False, True]
    assert str(frame["n"].dtype) == "int64"
    assert str(frame["nothing"].dtype) == "float64" and frame["nothing"].isna().all()
    assert frame["big"].tolist() == [1000.0, 2.5, -1.0]


def test_types_learned_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token, a decimal or a word far into the file changes the column correctly."""
    import lib.tabular.reading as reading

    monkeypatch.setattr(reading, "block_size", lambda header_bytes: 256)  # many chunks
    n = 400
    rows = [f"{i},{i},{i},01/0{1 + i % 9}/2024" for i in range(n)]
    rows[300] = "?,?,?,N/A"
    rows[350] = "7.5,word,8,13/01/2024"  # 13 is no month: the dates are day first
    data = ("ints,late_word,late_missing,day_first\n" + "\n".join(rows) + "\n").encode()
    parsed = parse_table("c.csv", data)
    assert parsed.table.column("ints").num_chunks > 3
    frame = parsed.frame
    assert str(frame["ints"].dtype) == "float64" and frame["ints"].iloc[350] == 7.5
    assert pd.isna(frame["ints"].iloc[300])
    # Numbers then a word: the column is text, and its "?" is still missing.
    assert str(frame["late_word"].dtype) == "str"
    assert pd.isna(frame["late_word"].iloc[300]) and frame["late_word"].iloc[350] == "word"
    assert frame["late_word"].iloc[299] == "299" and parsed.missing["late_word"] == {"?": 1}
    assert str(frame["late_missing"].dtype) == "float64"
    assert frame["day_first"].iloc[350] == pd.Timestamp("2024-01-13")
    assert frame["day_first"].iloc[2] == pd.Timestamp("2024-03-01")
    assert parsed.missing["day_first"] == {"N/A": 1}


def test_numbers_written_for_people_are_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Currency signs, thousands separators and percent signs, anywhere in a long file."""
    import lib.tabular.reading as reading

    monkeypatch.setattr(reading, "block_size", lambda header_bytes: 256)  # many chunks
    n = 300
    rows = [f'"${i:,}.50",{i}%,{i},"{i},{i % 10}",{i}' for i in range(1000, 1000 + n)]
    rows[5] = 'N/A,?,?,"1,5",x'
    rows[250] = '"-$12,345",7.5%,"1,234",?,"$4"'  # a late formatted number in a plain column
    rows[260] = '"$3",8,9,?,word'  # then a word: text after all
    header = "price,share,count,eu_decimal,late_word"
    parsed = parse_table("p.csv", (header + "\n" + "\n".join(rows) + "\n").encode())
    assert parsed.table.column("price").num_chunks > 3
    frame = parsed.frame
    assert str(frame["price"].dtype) == "float64" and frame["price"].iloc[0] == 1000.5
    assert frame["price"].iloc[250] == -12345.0 and pd.isna(frame["price"].iloc[5])
    assert frame["share"].iloc[1] == 1001.0 and frame["share"].iloc[250] == 7.5
    # plain integers kept before the first "1,234" are the same numbers as floats
    assert str(frame["count"].dtype) == "float64"
    assert frame["count"].iloc[0] == 1000.0 and frame["count"].iloc[250] == 1234.0
    assert parsed.missing["price"] == {"N/A": 1} and parsed.missing["share"] == {"?": 1}
    # a decimal comma in a comma-separated file and numbers then a word stay as written
    assert str(frame["eu_decimal"].dtype) == "str" and frame["eu_decimal"].iloc[0] == "1000,0"
    assert frame["late_word"].iloc[250] == "$4" and frame["late_word"].iloc[260] == "word"


def test_short_rows_and_quoted_newlines() -> None:
    ragged = parse_table("r.csv", b"a,b,c\n1,2\n3,4,5\n").frame
    assert ragged["a"].tolist() == [1, 3] and pd.isna(ragged["c"].iloc[0])
    quoted = parse_table("q.csv", b'note,n\n"two\nlines",1\n"plain",2\n').frame
    assert quoted["note"].tolist() == ["two\nlines", "plain"]
    with pytest.raises(TableError, match="Line 3 of the file has 4 fields where the header has 2"):
        parse_table("x.csv", b"a,b\n1,2\n1,2,3,4\n")
    with pytest.raises(TableError, match="semicolon in it must be in double quotes"):
        parse_table("x.csv", b"a;b;c\n1;2;3\n1;2;3;4\n")


def test_a_wide_file_with_a_short_row_is_read() -> None:
    """Past a few megabytes in one batch, pandas' parser hands text columns back in several
    Arrow chunks; the forgiving reader failed on them ("Cannot convert ChunkedArray")."""
    names = [f"c{j}" for j in range(40)]
    rows = [",".join(f"v{i:08d}" for _ in range(40)) for i in range(20_000)]
    rows.insert(500, "7")  # a short row: the fast reader refuses it
    parsed = parse_table("wide.csv", ("\n".join([",".join(names), *rows]) + "\n").encode())
    assert parsed.frame.shape == (20_001, 40) and parsed.frame["c39"].iloc[-1] == "v00019999"
    assert parsed.frame["c0"].iloc[500] == "7" and pd.isna(parsed.frame["c1"].iloc[500])


def _app_store(extra: dict[int, str], newline: str = "\n") -> bytes:
    """An app store listing: ratings, review counts, prices, "Month day, year" updates."""
    head = "App,Category,Rating,Reviews,Size,Installs,Type,Price,Content Rating,Last Updated,Ver"
    rows = [
        f'App {i},GAME,{1 + i % 40 / 10:.1f},{i * 37},{1 + i % 90}M,"1,000+",Free,'
        f'{"0" if i % 3 else "$4.99"},Everyone,"January {1 + i % 28}, 2018",1.0.{i}'
        for i in range(400)
    ]
    for at, row in sorted(extra.items(), reverse=True):
        rows.insert(at, row)
    return (newline.join([head, *rows]) + newline).encode("cp1252")


def test_codes_with_leading_zeros_keep_them() -> None:
    """ZIP codes (02134), county codes and account numbers are codes: read as numbers, 02134
    became 2134 and matched nothing a client sends."""
    rows = [f"{z:05d},{i % 2},{i}" for i, z in enumerate([2134, 2138, 10001, 94105, 601] * 30)]
    frame = parse_table("zips.csv", ("zip,y,n\n" + "\n".join(rows) + "\n").encode()).frame
    assert frame["zip"].tolist()[:5] == ["02134", "02138", "10001", "94105", "00601"]
    assert frame["n"].dtype == "int64" and frame["y"].dtype == "int64"
    # numbers of different widths stay numbers, and so do short codes (months 01..12)
    mixed = parse_table("m.csv", b"n,month\n007,01\n12,02\n300,12\n").frame
    assert mixed["n"].tolist() == [7, 12, 300] and mixed["month"].tolist() == [1, 2, 12]


def test_a_short_row_whose_values_do_not_fit_is_left_out_and_said() -> None:
    """A row with its category left out has every later value one column left: "3.0M" under
    the review counts, "Everyone" under the prices. It made those columns text, silently."""
    shifted = 'Life Made WI-Fi Photo Frame – café,1.9,19,3.0M,"1,000+",Free,0,Everyone,"February 11, 2018",1.0.19'
    for newline in ("\n", "\r\n"):
        data = _app_store({150: shifted}, newline)
        parsed = parse_table("googleplaystore.csv", data)
        frame = parsed.frame
        assert frame.shape == (400, 11) and frame["App"].iloc[150] == "App 150"
        assert frame["Reviews"].dtype == "int64" and frame["Price"].dtype == "float64"
        assert frame["Last Updated"].dtype.kind == "M" and frame["Rating"].max() == 4.9
        assert parsed.misfit_rows == ((shifted, 'Reviews "3.0M"'),) and parsed.padded_rows == 0
        said = " ".join(layout_notes("googleplaystore.csv", data))
        assert "A line has fewer cells than the header row and values that do not fit" in said
        assert 'Reviews "3.0M"' in said and "Left out" in said
    # beside it, a line that stops early and fits: kept in place, its last cells missing
    data = _app_store({150: shifted, 300: "App X,GAME,4.5,12"})
    parsed = parse_table("googleplaystore.csv", data)
    frame = parsed.frame
    assert frame.shape == (401, 11) and parsed.padded_rows == 1 and len(parsed.misfit_rows) == 1
    assert frame["App"].iloc[299:302].tolist() == ["App 299", "App X", "App 300"]
    assert frame["Reviews"].iloc[300] == 12 and pd.isna(frame["Price"].iloc[300])
    assert frame["Last Updated"].dtype.kind == "M"
    said = " ".join(layout_notes("googleplaystore.csv", data))
    assert "A line has fewer cells than the header row: their last cells are missing." in said


def test_many_rows_that_stop_early_are_read_with_their_last_cells_missing() -> None:
    rows = [f"{i},{i % 7},x{i}" if i % 2 else f"{i},{i % 7}" for i in range(3000)]
    data = ("id,group,note\n" + "\n".join(rows) + "\n").encode()
    parsed = parse_table("export.csv", data)
    assert parsed.frame.shape == (3000, 3) and parsed.frame["group"].dtype == "int64"
    assert parsed.padded_rows > 1000 and parsed.misfit_rows == ()
    said = " ".join(layout_notes("export.csv", data))
    assert "More than 1,000 lines have fewer cells than the header row" in said


def test_a_title_line_above_a_table_without_a_header_is_said_once() -> None:
    """UCI's adult.test: '|1x3 Cross validator' above rows of values and no column names."""
    rows = [
        f"{17 + i % 60}, {('Private', 'Self-emp-not-inc', '?')[i % 3]}, {10_000 + 37 * i}, "
        f"{('HS-grad', 'Bachelors')[i % 2]}, {('<=50K.', '>50K.')[i % 4 == 0]}"
        for i in range(80)
    ]
    data = ("|1x3 Cross validator\n" + "\n".join(rows) + "\n").encode()
    parsed = parse_table("adult.test", data)
    assert parsed.frame.shape == (80, 5) and parsed.frame.columns[0] == "column_1"
    said = layout_notes("adult.test", data)
    assert "The first row was a title or blank, above the table: left out." in said
    assert not any("column names read from row" in note for note in said)
    assert any(note.startswith("The first row of the table holds values") for note in said)


def test_unnamed_columns_are_said_named_or_left_out() -> None:
    """A TSV with a tab ending every line lost its empty last column without a word, and a
    blank header cell over values became column_2 unexplained."""
    tsv = "store_id\tcity\tsales\t\n" + "".join(
        f"{i}\tZ\u00fcrich\t{i * 3.5}\t\n" for i in range(60)
    )
    data = tsv.encode("cp1252")
    parsed = parse_table("stores.tsv", data)
    assert list(parsed.frame.columns) == ["store_id", "city", "sales"]
    said = layout_notes("stores.tsv", data, None, list(parsed.frame.columns))
    assert said[0] == (
        "A column with neither a name nor a value (a delimiter at the end of every line): left out."
    )
    csv = ("id,,score\n" + "".join(f"{i},x{i},{i}\n" for i in range(60))).encode()
    columns = list(parse_table("c.csv", csv).frame.columns)
    assert columns == ["id", "column_2", "score"]
    assert "named **column_2** after its position." in " ".join(
        layout_notes("c.csv", csv, None, columns)
    )
    assert layout_notes("c.csv", csv) == []  # without the columns read, nothing is guessed


def test_a_tab_separated_line_longer_than_128_kb_is_read() -> None:
    """A gene-expression table: 12,000 columns, each line one 130 KB field when split by
    commas, over the csv module's default field limit."""
    names = "\t".join(f"gene_{j:05d}" for j in range(12_000))
    rows = ["\t".join(str((i * j) % 97) for j in range(12_000)) for i in range(3)]
    parsed = parse_table("expression.tsv", ("\n".join([names, *rows]) + "\n").encode())
    assert parsed.delimiter == "\t" and parsed.frame.shape == (3, 12_000)
    assert parsed.frame["gene_11999"].tolist() == [0, 11999 % 97, 23998 % 97]


def test_a_line_of_words_inside_the_table_is_left_out_and_said() -> None:
    """LendingClub's loan files put a line of words between their two parts."""
    head = "id,amount,rate,status\n"
    first = "".join(f"{i},{100 * i},{i % 9}.5%,Fully Paid\n" for i in range(1, 40))
    second = "".join(f"{i},{100 * i},{i % 9}.5%,Charged Off\n" for i in range(40, 60))
    data = (head + first + '"Loans that do not meet the credit policy"\n' + second).encode()
    parsed = parse_table("loans.csv", data)
    frame = parsed.frame
    assert len(frame) == 59 and str(frame["id"].dtype) == "int64"
    assert frame["rate"].notna().all() and frame["status"].iloc[39] == "Charged Off"
    assert parsed.note_rows == ("Loans that do not meet the credit policy",)
    said = " ".join(layout_notes("loans.csv", data))
    assert "A line inside the table holds only words" in said and "credit policy" in said
    # one value alone in a row is a short row of data, kept
    short = parse_table("s.csv", (head + first + "77\n" + second).encode())
    assert len(short.frame) == 60 and short.frame["id"].iloc[39] == 77
    assert short.note_rows == () and not layout_of("s.csv", (head + "77\n").encode()).note_rows


def test_us_numbers_in_a_semicolon_file() -> None:
    """A semicolon file may still write its numbers the US way: `1,234.50` has both marks, so
    the column reads with a decimal point; its neighbour keeps the decimal comma."""
    data = b"id;amount;eu;short\n1;0.00;0,5;1,234\n2;1,234.50;1,5;2,500\n3;12,000.00;2,5;3,125\n"
    frame = parse_table("us.csv", data).frame
    assert frame["amount"].tolist() == [0.0, 1234.5, 12000.0]
    assert frame["eu"].tolist() == [0.5, 1.5, 2.5]
    # without a value with both marks, a semicolon file's comma is its decimal mark
    assert frame["short"].tolist() == [1.234, 2.5, 3.125]


def test_accounting_negatives_and_no_break_spaces_between_thousands() -> None:
    us = b'item,amount\na,"(1,234.50)"\nb,"2,000.00"\nc,($5)\nd,?\n'
    assert parse_table("ledger.csv", us).frame["amount"].tolist()[:3] == [-1234.5, 2000.0, -5.0]
    # a French spreadsheet puts a (narrow) no-break space between thousands
    eu = "item;amount\na;1\u00a0234,50\nb;2\u202f000,00\nc;(7,5)\n".encode()
    assert parse_table("fr.csv", eu).frame["amount"].tolist() == [1234.5, 2000.0, -7.5]
    # parentheses around words are words
    assert parse_table("n.csv", b"note\n(see below)\n(5)\n").frame["note"].iloc[0] == "(see below)"


def test_a_title_block_above_the_header_row_is_left_out() -> None:
    titled = b"Sales report Q3\nregion,amount,units\nnorth,100,3\nsouth,200,4\n"
    parsed = parse_table("t.csv", titled)
    assert parsed.columns == ["region", "amount", "units"] and parsed.title_rows == 1
    assert parsed.frame["amount"].tolist() == [100, 200]
    # padded to the table's width, with blank lines, after a byte-order mark, semicolons
    padded = "\ufeffSales;;\n;;\n\nregion;amount;units\nnorth;1,5;3\n".encode()
    parsed = parse_table("p.csv", padded)
    assert (parsed.title_rows, parsed.frame["amount"].tolist()) == (3, [1.5])
    # not a title: a two-column header, a header of one named column
    two = parse_table("two.csv", b"note\nx,1\ny,2\n")
    assert two.title_rows == 0 and two.columns == ["note"]
    # A quoted title on one line is a title (LendingClub's loan files open with one); a
    # quoted title that runs over two lines is left as written.
    for quoted in (b'"Report, Q3",,\n', b'"Notes offered by Prospectus (https://x.test/a)"\n'):
        parsed = parse_table("q.csv", quoted + b"a,b,c\n1,2,3\n")
        assert (parsed.title_rows, parsed.columns) == (1, ["a", "b", "c"]), quoted
        assert parsed.frame["c"].tolist() == [3]
    spanning = parse_table("s.csv", b'"Report\nQ3",,\na,b,c\n1,2,3\n')
    assert spanning.title_rows == 0 and spanning.columns[0] == "Report Q3"
    # A title with a comma is narrower than the table: before a blank line or the header row
    # it is a title, not the header of a table whose first column holds row names (the reader
    # took it so, and dropped the first column).
    for title in (b"Staff list, May\n\n", b"Sales report, Q1 2024\n", b"Sales, Q1\n,\n"):
        parsed = parse_table("t.csv", title + b"region,amount,units\nnorth,100,3\nsouth,200,4\n")
        assert parsed.columns == ["region", "amount", "units"], title
        assert parsed.frame["region"].tolist() == ["north", "south"]
    book = _workbook([["Staff list", "May"], [], ["name", "age", "team"], ["Ann", 31, "a"]])
    assert parse_table("t.xlsx", book).columns == ["name", "age", "team"]
    # R's header without a name for the row names is followed by data, not by a header.
    r_names = parse_table("r.csv", b"x,y\nMazda,yes,red\nFiat,no,red\nVW,yes,blue\n")
    assert r_names.columns == ["x", "y"] and r_names.frame["x"].tolist()[0] == "yes"
    # a long run of one-cell lines has no header below it within reach: read as written
    lines = b"".join(b"line %d,,\n" % i for i in range(30))
    assert parse_table("l.csv", b"a,b,c\n" + lines).title_rows == 0
    assert parse_table("l.csv", lines + b"a,b,c\n").title_rows == 0


def test_fixed_width_text_is_cut_into_columns_where_every_line_is_blank() -> None:
    """A mainframe or weather-station export: no delimiter, cells with spaces inside (names,
    places), numbers right-aligned, a blank cell for a missing value."""
    lines = ["STATION     NAME                 TEMP   PRCP"]
    places = ["ALBANY NY", "SAN JOSE CA", "BOISE ID", "EL PASO TX"]
    for i in range(40):
        prcp = "" if i % 7 == 3 else f"{i / 10:.2f}"
        lines.append(f"US{10000 + i:<10}{places[i % 4]:<20}{i - 5.5:6.1f}{prcp:>7}")
    parsed = parse_table("weather.txt", ("\n".join(lines) + "\n").encode())
    frame = parsed.frame
    assert parsed.columns == ["STATION", "NAME", "TEMP", "PRCP"]
    assert frame["NAME"].tolist()[:2] == ["ALBANY NY", "SAN JOSE CA"]
    assert frame["TEMP"].tolist()[:2] == [-5.5, -4.5] and pd.isna(frame["PRCP"].iloc[3])
    assert parsed.missing["PRCP"] == {"": 6} and frame["PRCP"].iloc[4] == 0.4
    # without a header row, the same columns by position
    headless = parse_table("weather.dat", ("\n".join(lines[1:]) + "\n").encode())
    assert not headless.header_row and headless.frame["column_2"].iloc[1] == "SAN JOSE CA"
    # Numbers only, aligned: a blank cell in the middle of a line stays in its column (split
    # on whitespace, every value after it moved one column to the left).
    rows = ["    ID    TEMP    PRCP    WIND"]
    rows += [
        f"{i:>6}{i + 0.5:8.1f}{'' if i % 5 == 2 else f'{i / 4:.2f}':>8}{i * 2.0:8.1f}"
        for i in range(30)
    ]
    gaps = parse_table("gaps.txt", ("\n".join(rows) + "\n").encode()).frame
    assert gaps["WIND"].notna().all() and gaps["WIND"].iloc[2] == 4.0
    assert gaps["PRCP"].isna().sum() == 6 and gaps["PRCP"].iloc[3] == 0.75
    # one column of text with runs of spaces in it is still one column
    notes = parse_table("notes.csv", b"note\nhello there\nbig  gap here\nx  y\nsome more\n")
    assert notes.columns == ["note"] and notes.frame["note"].iloc[1] == "big  gap here"


def test_a_world_bank_indicator_file_is_read_below_its_source_lines() -> None:
    """The World Bank's API_*.csv: two quoted source lines and blanks above a header of years,
    every value quoted, a comma ending each line. Read by its spaces, or refused, before."""
    years = [str(y) for y in range(1960, 2023)]
    lines = [
        '"Data Source","World Development Indicators",',
        "",
        '"Last Updated Date","2023-12-18",',
        "",
        '"Country Name","Country Code","Indicator Name","Indicator Code",'
        + ",".join(f'"{y}"' for y in years)
        + ",",
    ]
    for i, country in enumerate(["Aruba", "Korea, Rep.", "Congo, Dem. Rep."] * 10):
        values = ['""' if (i + j) % 4 == 0 else f'"{(i + 1) * 1e9 + j}"' for j in range(63)]
        lines.append(f'"{country}","ABC","GDP (current US$)","NY.GDP.MKTP.CD",{",".join(values)},')
    parsed = parse_table("API_NY.GDP.csv", ("\ufeff" + "\n".join(lines) + "\n").encode())
    frame = parsed.frame
    assert parsed.title_rows == 4 and parsed.delimiter == ","
    assert list(frame.columns) == [
        "Country Name",
        "Country Code",
        "Indicator Name",
        "Indicator Code",
        *years,
    ]
    assert frame["Country Name"].iloc[1] == "Korea, Rep." and frame["1961"].iloc[0] == 1e9 + 1
    assert frame["1960"].isna().iloc[0] and str(frame["2022"].dtype) == "float64"


def test_a_census_download_reads_both_header_rows_and_its_placeholders() -> None:
    """data.census.gov: variable codes, then a row of labels, then numbers with `*****` where
    a margin of error does not apply."""
    head = "GEO_ID,NAME,B01001_001E,B01001_001M,B01001_002E,B01001_002M\n"
    head += '"Geography","Geographic Area Name","Estimate!!Total:","Margin of Error!!Total:",'
    head += '"Estimate!!Total:!!Male:","Margin of Error!!Total:!!Male:"\n'
    rows = "".join(
        f'0500000US{i:05d},"County {i}, State",{1000 + i},{"*****" if i % 3 else 12 + i},'
        f"{500 + i},{7 + i}\n"
        for i in range(30)
    )
    parsed = parse_table("ACSDT5Y2022.B01001-Data.csv", (head + rows).encode())
    frame = parsed.frame
    assert parsed.header_rows == 2
    assert frame.columns[2] == "B01001_001E Estimate!!Total:"
    assert str(frame["B01001_001M Margin of Error!!Total:"].dtype) == "float64"
    assert parsed.missing["B01001_001M Margin of Error!!Total:"] == {"*****": 20}


def test_semicolon_file_with_decimal_commas() -> None:
    data = "city;price;total;share;code;dots\nLyon;1,5;1.234,50 €;12,5 %;1,2,3;7.5\n"
    data += "Nice;2,25;-3 000;7%;4,5,6;8\nMetz;?;,5;0,1%;7;9.25\n"
    parsed = parse_table("eu.csv", data.encode())
    frame = parsed.frame
    assert parsed.delimiter == ";" and frame["price"].tolist()[:2] == [1.5, 2.25]
    assert pd.isna(frame["price"].iloc[2]) and parsed.missing["price"] == {"?": 1}
    assert frame["total"].tolist() == [1234.5, -3000.0, 0.5]
    assert frame["share"].tolist() == [12.5, 7.0, 0.1]
    assert frame["code"].tolist() == ["1,2,3", "4,5,6", "7"]  # not a number: kept as written
    assert frame["dots"].tolist() == [7.5, 8.0, 9.25]  # plain decimals still read as they are
    # a comma-separated file keeps reading "1,500" as fifteen hundred
    assert parse_table("us.csv", b'n\n"1,500"\n2\n').frame["n"].tolist() == [1500.0, 2.0]


def test_thousands_dots_in_whole_numbers_of_a_decimal_comma_file() -> None:
    """A German spreadsheet's export writes 13.510 items beside 998: thousands, not 13.51.
    A semicolon file whose numbers have decimal points only keeps them (`1.250` beside `7.4`)."""

    def german(x: float, digits: int) -> str:
        return f"{x:,.{digits}f}".translate(str.maketrans(",.", ".,"))

    rows = ["Datum;Filiale;Umsatz;Menge;Anteil"]
    counts = [40 + (i * 7919) % 20_000 for i in range(3000)]
    for i, menge in enumerate(counts):
        rows.append(
            f"{1 + i % 28:02d}.10.2020;F{i % 4};{german(i * 1000 + 0.63, 2)};"
            f"{german(menge, 0)};0,{i % 10}"
        )
    frame = parse_table("umsatz.csv", "\n".join(rows).encode()).frame
    assert frame["Menge"].tolist() == counts
    assert frame["Umsatz"].iloc[2] == 2000.63 and frame["Anteil"].iloc[3] == 0.3
    wine = b"a;b;c\n7.4;0.7;1.250\n7.8;0.88;2.500\n11.2;0.28;3\n"
    assert parse_table("wine.csv", wine).frame["c"].tolist() == [1.25, 2.5, 3.0]
    # no value under a thousand, no decimal comma anywhere: a point is a point
    assert parse_table("p.csv", b"a;b\n1.250;x\n2.500;y\n").frame["a"].tolist() == [1.25, 2.5]
    # ... but beside amounts written with a decimal comma, every count is in the thousands
    big = ["Menge;Umsatz;Rabatt"] + [
        f"{german(1000 + 17 * i, 0)};{german(2000 + 9.37 * i, 2)} €;{i % 9},5" for i in range(60)
    ]
    frame = parse_table("export.csv", "\n".join(big).encode("cp1252")).frame
    assert frame["Menge"].tolist() == [1000 + 17 * i for i in range(60)]
    assert frame["Umsatz"].iloc[1] == 2009.37 and frame["Rabatt"].iloc[3] == 3.5


# --- hostile and huge files -----------------------------------------------------------------


def test_delimiter_choice_reads_a_bounded_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """csv.Sniffer is quadratic on lines like this one (23 s for 64 KB): it is not used, and
    the delimiter is chosen from at most the header line plus SNIFF_MAX_BYTES."""
    import csv

    import lib.tabular.csv_text as csv_text

    def no_sniffer(*args, **kwargs):
        raise AssertionError("csv.Sniffer must not run on uploaded bytes")

    monkeypatch.setattr(csv.Sniffer, "sniff", no_sniffer)
    samples: list[int] = []
    real_choose = csv_text.choose_delimiter
    monkeypatch.setattr(
        csv_text, "choose_delimiter", lambda s: samples.append(len(s)) or real_choose(s)
    )
    hostile = ('a,"' * 21_846).encode()[:65_536]  # quotes and delimiters that never close
    body = b"x,y\n" + b"1,2\n" * 10 + hostile + b"\n" + b"3,4\n" * 50_000
    with pytest.raises(TableError):
        parse_table("hostile.csv", body)
    assert samples and max(samples) <= len("x,y\n") + SNIFF_MAX_BYTES
    header_attack = hostile + b"\n1,2\n"
    try:
        parse_table("header.csv", header_attack)
    except TableError:
        pass
    assert max(samples) <= len(header_attack)


def test_csv_row_and_column_limits() -> None:
    wide = (",".join(f"c{i}" for i in range(50)) + "\n" + ",".join("1" * 50) + "\n").encode()
    with pytest.raises(TableError, match="50 columns, over the limit of 40"):
        parse_table("wide.csv", wide, limits=UploadLimits(max_columns=40))
    long = b"a\n" + b"1\n" * 5000
    with pytest.raises(TableError, match="more than 1,000 rows.*OPSDECK_MAX_ROWS"):
        parse_table("long.csv", long, limits=UploadLimits(max_rows=1000))


def _parquet(table: pa.Table, **kwargs) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kwargs)
    return sink.getvalue().to_pybytes()


def test_parquet_bomb_is_refused_from_its_footer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many rows of one constant compress to almost nothing; the footer says how many."""
    bomb = _parquet(pa.table({"x": pa.array(np.zeros(2_000_000))}))
    assert len(bomb) < 64_000  # ~2 KB on disk for 16 MB of doubles
    decoded: list[int] = []
    real_iter = pq.ParquetFile.iter_batches
    monkeypatch.setattr(
        pq.ParquetFile,
        "iter_batches",
        lambda self, *a, **k: decoded.append(1) or real_iter(self, *a, **k),
    )
    with pytest.raises(TableError, match="2,000,000 rows, over the limit of 100,000"):
        parse_table("bomb.parquet", bomb, limits=UploadLimits(max_rows=100_000))
    assert decoded == []  # refused before decoding anything


def test_parquet_string_bomb_stops_at_the_byte_budget() -> None:
    """A dictionary of one 1 KB string repeated: the footer cannot size it, decoding stops."""
    rows = 100_000
    values = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["x" * 1024])
    )
    bomb = _parquet(pa.table({"s": values}), store_schema=False)
    assert len(bomb) < 64_000  # ~100 MB once decoded
    limits = UploadLimits(max_uncompressed_bytes=8 << 20)
    with pytest.raises(TableError, match="decodes to more than 8 MB"):
        parse_table("strings.parquet", bomb, limits=limits)


def test_parquet_text_columns_learn_their_type() -> None:
    data = _parquet(pa.table({"age": ["22", "?", "41"], "ints": pa.array([1, None, 3])}))
    parsed = parse_table("t.parquet", data)
    assert str(parsed.frame["age"].dtype) == "float64" and parsed.missing == {"age": {"?": 1}}
    assert str(parsed.frame["ints"].dtype) == "float64"


def test_text_columns_keep_numbers_as_written() -> None:
    """A model trained on a column as text scores "22" and "19.9667", not 22.0 and 19.9667."""
    data = b"fare,age\n22,1\n19.9667,2\n7.0,3\n,4\n"
    typed = parse_table("t.csv", data).frame
    assert typed["fare"].tolist()[:3] == [22.0, 19.9667, 7.0]
    kept = parse_table("t.csv", data, text_columns=["fare"]).frame
    assert kept["fare"].tolist()[:3] == ["22", "19.9667", "7.0"]
    assert kept["fare"].isna().tolist() == [False, False, False, True]
    assert kept["age"].tolist() == [1, 2, 3, 4]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_compressed_table_is_read_as_the_file_inside() -> None:
    """Data portals hand out `.csv.gz` files and zip archives with one table in them."""
    csv_bytes = b"age,plan,y\n39,basic,no\n50,pro,yes\n"
    parsed = parse_table("churn.csv.gz", gzip.compress(csv_bytes))
    assert parsed.archive == "gzip" and parsed.frame["age"].tolist() == [39, 50]
    download = _zip(
        {
            "churn/README.txt": b"about the data",
            "churn/WA_Fn-UseC_-Telco-Customer-Churn.csv": csv_bytes,
            "__MACOSX/churn/._WA_Fn-UseC_-Telco-Customer-Churn.csv": b"\x00\x05junk",
        }
    )
    # a stored copy keeps its original name: the bytes say what it is
    for name in ("telco.zip", "original.csv"):
        parsed = parse_table(name, download)
        assert parsed.archive == "zip"
        assert parsed.member == "WA_Fn-UseC_-Telco-Customer-Churn.csv"
        assert parsed.frame["plan"].tolist() == ["basic", "pro"]
    parquet = to_parquet_bytes(pd.DataFrame({"a": [1, 2]}))
    assert parse_table("t.zip", _zip({"t.parquet": parquet})).frame["a"].tolist() == [1, 2]
    assert parse_table("t.xlsx.gz", gzip.compress(_workbook([["a"], [1], [2]]))).rows == 2
    for packed, kind in ((bz2.compress(csv_bytes), "bzip2"), (lzma.compress(csv_bytes), "xz")):
        parsed = parse_table("covtype.data.x", packed)
        assert parsed.archive == kind and parsed.frame["age"].tolist() == [39, 50]


def test_a_competitions_zip_is_read_from_its_training_table() -> None:
    """`titanic.zip` holds train.csv, test.csv and a sample submission: train.csv is read."""
    train = b"PassengerId,Survived,Age\n1,0,22\n2,1,38\n"
    members = {
        "gender_submission.csv": b"PassengerId,Survived\n3,0\n",
        "test.csv": b"PassengerId,Age\n3,30\n",
        "train.csv": train,
        "data_description.txt": b"notes",
    }
    parsed = parse_table("titanic.zip", _zip(members))
    assert parsed.member == "train.csv" and parsed.frame["Survived"].tolist() == [0, 1]
    layout = layout_of("titanic.zip", _zip(members))
    assert layout.other_members == ("gender_submission.csv", "test.csv")
    # Two training tables, or none among several: the operator says which.
    pairs = [
        {"train.csv": train, "train_labels.csv": train},
        {"a.csv": train, "b.csv": train},
        {"trains.csv": train, "stations.csv": train},  # a table about trains
    ]
    for pair in pairs:
        with pytest.raises(TableError, match="holds 2 tables"):
            parse_table("two.zip", _zip(pair))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_zip({"a.csv": b"x\n1\n", "b.csv": b"x\n2\n"}), "holds 2 tables"),
        (_zip({"a.txt": b"x\n1\n", "b.txt": b"x\n2\n"}), "holds 2 tables"),
        (_zip({"notes.md": b"hello"}), "holds no CSV"),
        (gzip.compress(gzip.compress(b"a,b\n1,2\n")), "compressed twice"),
        (bz2.compress(gzip.compress(b"a,b\n1,2\n")), "compressed twice"),
        (bz2.compress(b"a,b\n1,2\n")[:-9], "bzip2 file does not decompress"),
        (lzma.compress(b"a,b\n1,2\n")[:-9], "xz file does not decompress"),
        (lzma.compress(b"a,b\n" + b"1,2\n" * 400_000), "inflates past"),
        (gzip.compress(b"a,b\n1,2\n")[:-9], "does not decompress"),
        (gzip.compress(b"a,b\n" + b"1,2\n" * 400_000), "inflates past"),
        (_zip({"big.csv": b"a,b\n" + b"1,2\n" * 400_000}), "inflates past"),
    ],
)
def test_a_bad_archive_is_refused_with_reason(data: bytes, message: str) -> None:
    limits = UploadLimits(max_upload_bytes=1 << 20, max_uncompressed_bytes=1 << 20)
    with pytest.raises(TableError, match=message):
        parse_table("upload.zip", data, limits=limits)


def test_the_first_sheet_with_cells_is_read() -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Cover"
    data = book.create_sheet("Data")
    for row in (["a", "b"], [1, "x"], [2, "y"]):
        data.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = parse_table("report.xlsx", buffer.getvalue())
    assert parsed.sheet == "Data" and parsed.frame["b"].tolist() == ["x", "y"]
    assert parse_table("t.xlsx", _workbook([["a"], [1]])).sheet is None


def _book(sheets: list[tuple[str, list[list]]], hidden: str | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if title == hidden:
            sheet.sheet_state = "hidden"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_the_sheet_holding_the_table_is_read() -> None:
    """Statistics offices put a cover page and a data dictionary before the data."""
    data = [["id", "age", "y"]] + [[i, 20 + i % 40, "yes" if i % 3 else "no"] for i in range(30)]
    cover = [["Household survey 2023"], [], ["Contents"], ["Data: the responses"], ["Notes"]]
    variables = [["Variable", "Meaning"], ["id", "respondent"], ["age", "years"], ["y", "answer"]]
    book = _book([("Cover", cover), ("Variables", variables), ("Data", data)])
    parsed = parse_table("survey.xlsx", book)
    assert parsed.sheet == "Data" and parsed.rows == 30 and parsed.columns == ["id", "age", "y"]
    assert layout_of("survey.xlsx", book).other_sheets == ("Cover", "Variables")
    # The first sheet, when it holds the biggest table; a hidden sheet is never read.
    first = _book([("Data", data), ("Variables", variables)])
    assert parse_table("s.xlsx", first).sheet is None
    lookup = [["code", "label"]] + [[i, f"l{i}"] for i in range(500)]
    with_hidden = _book([("Data", data), ("Lookup", lookup)], hidden="Lookup")
    assert parse_table("s.xlsx", with_hidden).rows == 30
    assert layout_of("s.xlsx", with_hidden).other_sheets == ()
    # The operator's choice of sheet, named as the workbook names it (case and spaces aside).
    named = parse_table("survey.xlsx", book, sheet="variables ")
    assert named.columns == ["Variable", "Meaning"] and named.rows == 3
    chosen = layout_of("survey.xlsx", book, "Variables")
    assert chosen.sheet_named and chosen.other_sheets == ("Cover", "Data")
    with pytest.raises(TableError, match="no sheet named 'Sums': its sheets are Cover, Variables"):
        parse_table("survey.xlsx", book, sheet="Sums")
    assert parse_table("t.csv", b"a,b\n1,2\n", sheet="Data").rows == 1  # no sheets: ignored


def _people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["Ann", "Bob", None],
            "fare": [7.25, None, 8.5],
            "vip": [True, False, True],
            "joined": ["2024-01-02", "2024-02-03", None],
        }
    )


@pytest.mark.parametrize("orient", ["records", "split", "columns", "index", "table", "lines"])
def test_json_tables_are_read_in_the_layouts_people_write(orient: str) -> None:
    """APIs and `DataFrame.to_json` write records, JSON Lines, or pandas' other layouts."""
    people = _people()
    if orient == "lines":
        data = people.to_json(orient="records", lines=True).encode()
    else:
        data = people.to_json(orient=orient).encode()
    parsed = parse_table("people.json" if orient != "lines" else "people.jsonl", data)
    frame = parsed.frame.drop(columns=["index"], errors="ignore")  # "table" writes the index
    as_csv = parse_table("people.csv", people.to_csv(index=False).encode()).frame
    assert parsed.file_format == "json"
    pd.testing.assert_frame_equal(frame, as_csv)
    assert parse_table("people.json.gz", gzip.compress(data)).frame.shape == parsed.frame.shape


def test_json_nested_records_wrappers_and_text_values() -> None:
    nested = (
        b'{"count": 3, "next": null, "results": ['
        b'{"user": {"name": "a", "age": 30}, "tags": ["x", "y"], "score": "12", "code": "NA"},'
        b'{"user": {"name": "b"}, "tags": [], "score": 7, "code": "EU"},'
        b'{"user": null, "extra": true, "score": "n/a", "code": "NA"}]}'
    )
    parsed = parse_table("api.json", nested)
    frame = parsed.frame
    assert frame.columns.tolist() == ["user.name", "user.age", "tags", "score", "code", "extra"]
    assert frame["user.name"].tolist()[:2] == ["a", "b"] and pd.isna(frame["user.name"].iloc[2])
    assert frame["tags"].tolist()[:2] == ['["x", "y"]', "[]"]  # a list is kept as its text
    assert str(frame["score"].dtype) == "float64" and frame["score"].tolist()[:2] == [12, 7]
    assert parsed.missing["score"] == {"n/a": 1}
    assert frame["code"].tolist() == ["NA", "EU", "NA"]  # a region, as in a CSV
    features = [
        {"type": "Feature", "properties": {"town": t, "n": i}, "geometry": None}
        for i, t in enumerate(["Leeds", "York"])
    ]
    geo = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    assert parse_table("towns.geojson", geo).frame.to_dict("list") == {
        "town": ["Leeds", "York"],
        "n": [0, 1],
    }
    values = parse_table("v.json", b'[["town", "n"], ["Leeds", 1], ["York", 2]]').frame
    assert values.columns.tolist() == ["town", "n"] and values["n"].tolist() == [1, 2]
    solr = b'{"responseHeader": {"status": 0}, "response": {"numFound": 2, "docs": '
    solr += b'[{"id": "a", "n": 1}, {"id": "b", "n": 2}]}}'
    assert parse_table("solr.json", solr).frame["n"].tolist() == [1, 2]
    lists = parse_table("l.json", b'{"town": ["Leeds", "York"], "n": [1, null]}').frame
    assert lists["town"].tolist() == ["Leeds", "York"] and lists["n"].isna().tolist() == [
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[1, 2, 3]", "single values, not records"),
        (b'{"a": [1, 2], "b": [3]}', "holds no table"),  # columns of unequal length
        (b'[{"a": 1},\n {"a": 2}', "not valid JSON: .* line 2"),
        (b'[{"a": 1}] trailing', "extra data after the array at line 1, column 12"),
        (b'{"a": 1}\n[1]', "a line that is not a record at line 2"),
        (b"[]", "no rows"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
    ],
)
def test_json_that_is_not_a_table_is_refused_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(TableError, match=reason):
        parse_table("bad.json", data)


def test_json_is_read_within_the_limits() -> None:
    rows = json.dumps([{"a": i, "b": "x"} for i in range(100)]).encode()
    with pytest.raises(TableError, match="over the limit of 50"):
        parse_table("r.json", rows, limits=UploadLimits(max_rows=50))
    wide = json.dumps([{f"c{i}": i for i in range(30)}]).encode()
    with pytest.raises(TableError, match="30 columns, over the limit of 20"):
        parse_table("w.json", wide, limits=UploadLimits(max_columns=20))
    many = "\n".join(json.dumps({"a": i, "b": "x" * 100}) for i in range(70_000)).encode()
    with pytest.raises(TableError, match="decodes to more than"):
        parse_table("m.jsonl", many, limits=UploadLimits(max_uncompressed_bytes=1024 * 1024))


@pytest.mark.parametrize(
    ("name", "data", "columns", "first"),
    [
        # UCI's German credit data: single spaces, no header row
        (
            "german.data",
            b"A11 6 A34 A43 1169 1\nA12 48 A32 A43 5951 2\nA14 12 A34 A46 2096 1\n",
            6,
            ["A11", 6, "A34", "A43", 1169, 1],
        ),
        # Boston housing: column-aligned, padded with spaces
        (
            "housing.data",
            b" 0.00632  18.00   2.310  0  24.00\n 0.02731   0.00   7.070  0  21.60\n"
            b" 0.02729   0.00   7.070  0  34.70\n",
            5,
            [0.00632, 18.0, 2.31, 0, 24.0],
        ),
        # R's write.table: a header, quoted strings with spaces inside
        (
            "people.txt",
            b'"name" "age" "city"\n"Bob Smith" 34 "New York"\n"Ann Lee" 29 "Paris"\n',
            3,
            ["Bob Smith", 34, "New York"],
        ),
        # ... with a comma inside quoted text, which splits every line but the header in two
        (
            "cards.txt",
            b'"id" "income" "name"\n1 "[50, 75)" "Allen, Miss E"\n2 "[40, 50)" "Bo, Mr A"\n'
            b'3 "[75, 100)" "Cy, Mrs B"\n',
            3,
            [1, "[50, 75)", "Allen, Miss E"],
        ),
        # UCI's auto-mpg: column-aligned numbers, then a tab and the quoted car name
        (
            "auto-mpg.data",
            b'18.0   8   307.0      130.0      3504.      12.0   70  1\t"chevrolet chevelle"\n'
            b'15.0   8   350.0      ?          3693.      11.5   70  1\t"buick skylark 320"\n'
            b'26.0   4   97.00      46.00      1835.      20.5   70  2\t"vw 1131 deluxe"\n',
            9,
            [18.0, 8, 307.0, 130.0, 3504.0, 12.0, 70, 1, "chevrolet chevelle"],
        ),
        # the mushroom data: single letters, no header row
        (
            "agaricus-lepiota.data",
            b"p,x,s,n,t\ne,x,s,y,t\ne,b,s,w,t\np,x,y,w,t\ne,x,s,g,f\n",
            5,
            ["p", "x", "s", "n", "t"],
        ),
    ],
)
def test_files_from_statistics_packages_and_data_archives(
    name: str, data: bytes, columns: int, first: list
) -> None:
    frame = parse_table(name, data).frame
    assert frame.shape[1] == columns
    assert frame.iloc[0].tolist() == first


def test_tab_separated_words_keep_their_tabs() -> None:
    """Cells of several words, some with double spaces, stay one cell each: only a file whose
    every line is aligned with runs of spaces is read by its whitespace."""
    data = b"name\tcity\tage\nBob Smith\tNew York\t34\nAnn  Lee\tLos Angeles\t29\n"
    data += b"Jo Ng\tSt  Louis\t41\n"
    parsed = parse_table("people.tsv", data)
    assert parsed.delimiter == "\t"
    assert parsed.frame.iloc[1].tolist() == ["Ann  Lee", "Los Angeles", 29]


def test_a_one_column_file_of_words_is_one_column() -> None:
    frame = parse_table("names.csv", b"name\nBob Smith\nAnn Lee\nJo Ng\n").frame
    assert frame.columns.tolist() == ["name"] and frame["name"].iloc[0] == "Bob Smith"


def test_column_names_over_two_rows_are_one_header() -> None:
    """UCI's credit-card default data names its columns twice (X1.. over LIMIT_BAL, ...);
    engineering exports put units below the names. Either way the numbers stay numbers."""
    coded = b",X1,X2,X3,Y\nID,LIMIT_BAL,SEX,EDUCATION,default payment next month\n"
    coded += b"1,20000,2,2,1\n2,120000,2,2,1\n3,90000,2,2,0\n"
    parsed = parse_table("default of credit card clients.csv", coded)
    assert parsed.header_rows == 2 and parsed.rows == 3
    assert parsed.columns == ["ID", "LIMIT_BAL", "SEX", "EDUCATION", "default payment next month"]
    assert parsed.frame["LIMIT_BAL"].tolist() == [20000, 120000, 90000]
    units = b"time,Temperature,Pressure,site\n,degC,kPa,\n0,21.5,101.3,a\n1,21.7,101.2,b\n"
    parsed = parse_table("log.csv", units)
    assert parsed.columns == ["time", "Temperature degC", "Pressure kPa", "site"]
    assert parsed.frame["Pressure kPa"].tolist() == [101.3, 101.2]
    sheet = parse_table(
        "clients.xlsx",
        _workbook(
            [
                ["", "X1", "X2", "Y"],
                ["ID", "LIMIT_BAL", "SEX", "default"],
                [1, 20000, 2, 1],
                [2, 50000, 1, 0],
            ]
        ),
    )
    assert sheet.header_rows == 2 and sheet.columns == ["ID", "LIMIT_BAL", "SEX", "default"]
    assert sheet.frame["LIMIT_BAL"].tolist() == [20000, 50000]
    # a first data row with a word in one numeric column is data, not names
    plain = parse_table("t.csv", b"a,b,c\n1,n/a2,x\n2,3,y\n4,5,z\n")
    assert plain.header_rows == 1 and plain.rows == 3


def test_notes_and_a_totals_row_below_the_table_are_left_out() -> None:
    """Statistics offices end a table with a totals row and its sources; neither is a row
    of data (a totals row would be a huge outlier, "Source: ..." turns numbers into text)."""
    rows = "".join(f"R{i % 4},{i * 3},{i % 7}.25,{'yes' if i % 3 else 'no'}\n" for i in range(60))
    body = "region,units,price,label\n" + rows
    footer = 'Total,5310,,\n,,,\n"Source: Office of Statistics, 2022",,,\nNote: provisional,,,\n'
    parsed = parse_table("report.csv", (body + footer).encode())
    assert parsed.rows == 60 and parsed.footer_rows == 3
    assert parsed.frame["units"].dtype == "int64" and parsed.frame["units"].max() == 177
    assert not parsed.missing
    # Behind a blank line, a sparser note row is a note too; the same file in a workbook.
    split = parse_table("r.csv", (body + "\nSource: Office of Statistics, 2022\n").encode())
    assert split.rows == 60 and split.frame["units"].dtype == "int64"
    sheet = [["region", "units", "price", "label"]]
    sheet += [[f"R{i % 4}", i * 3, i % 7 + 0.25, "yes" if i % 3 else "no"] for i in range(60)]
    sheet += [["Total", 5310, None, None], [], ["Source: Office of Statistics"]]
    book = parse_table("report.xlsx", _workbook(sheet))
    assert book.rows == 60 and book.footer_rows == 2
    assert book.frame["region"].tolist()[-1] == "R3" and book.frame["units"].dtype == "int64"


def test_rows_that_only_look_like_a_footer_are_data() -> None:
    # "Total" is a value of its column elsewhere; a last row of text with values missing and
    # no blank line above it; a one-column list of words; two columns (no room for notes).
    plans = "plan,fee,users\n" + "".join(
        f"{'Total' if i % 2 else 'Basic'},{i},{i * 2}\n" for i in range(10)
    )
    assert parse_table("plans.csv", plans.encode()).rows == 10
    sparse = "name,age,city,score,group\n" + "".join(f"n{i},{i},c{i},{i},g\n" for i in range(9))
    sparse += "Zoe,,,,g\nTotal Recall,,,,g\n"
    assert parse_table("p.csv", sparse.encode()).rows == 11
    words = b"name\nBob\n\nAnn\nJo\n"
    assert parse_table("w.csv", words).frame["name"].dropna().tolist() == ["Bob", "Ann", "Jo"]
    pairs = b"item,note\n1,ok\n2,ok\nSource: me,\n"
    assert parse_table("pairs.csv", pairs).rows == 3
    # More "notes" than a footer has: rows of data whose other cells are missing.
    tail = "a,b,c\n" + "".join(f"{i},x,{i}\n" for i in range(50))
    tail += "".join(f"name{i},,\n" for i in range(40)) + ",,\n"
    assert parse_table("t.csv", tail.encode()).rows == 90


def test_comment_lines_above_the_header_row_are_left_out() -> None:
    body = "".join(f"{i},{i * 2},k{i % 3}\n" for i in range(20))
    commented = "# exported 2024-03-01\n# units: kg, usd\nid,weight,kind\n" + body
    parsed = parse_table("c.csv", commented.encode())
    assert parsed.columns == ["id", "weight", "kind"] and parsed.rows == 20
    assert parsed.title_rows == 2
    # Weather stations write dozens of comment lines; `##` lines above a `#`-named header.
    many = "".join(f"# line {i}: note, with comma\n" for i in range(60)) + "id,weight,kind\n"
    assert parse_table("noaa.csv", (many + body).encode()).columns == ["id", "weight", "kind"]
    vcf = "##fileformat=VCFv4.2\n##source=x\n#CHROM,POS,ID\n" + body
    assert parse_table("calls.csv", vcf.encode()).columns == ["#CHROM", "POS", "ID"]
    # A column named "#" (the Pokemon table's number) is a name, not a comment.
    numbered = parse_table("pokemon.csv", ("#,Name,Type\n" + body).encode())
    assert numbered.columns == ["#", "Name", "Type"] and numbered.rows == 20


def test_columns_with_neither_name_nor_value_are_left_out() -> None:
    """A spreadsheet's CSV export writes a delimiter for each formatted but empty column."""
    trailing = b"a,b,,\n1,x,,\n2,y,,\n"
    assert parse_table("t.csv", trailing).columns == ["a", "b"]
    kept = parse_table("k.csv", b"a,,c\n1,,x\n2,5,y\n")  # a value: named by position
    assert kept.columns == ["a", "column_2", "c"]
    named = parse_table("n.csv", b"a,b,empty\n1,x,\n2,y,\n")  # a name: the operator's column
    assert named.columns == ["a", "b", "empty"]
    headerless = parse_table("h.data", b"1.5,2,x,,\n2.5,3,y,,\n3.5,4,x,,\n")
    assert headerless.columns == ["column_1", "column_2", "column_3"]


def test_line_breaks_inside_a_column_name_are_spaces() -> None:
    data = b'"Annual\nIncome","Age ",x\n1000,20,a\n2000,30,b\n'
    assert parse_table("i.csv", data).columns == ["Annual Income", "Age", "x"]


ARFF = b"""% Adult census extract
% from the UCI repository
@relation 'adult-sample'

@attribute age numeric
@attribute workclass {Private,'Self-emp',?}
@attribute 'capital gain' real
@attribute when date "yyyy-MM-dd"
@attribute class {'<=50K','>50K'}

@data
39,Private,2174,2020-01-05,'<=50K'
50,'Self-emp',0,2020-02-05,'>50K'
% a comment between rows
38,?,?,2020-03-05,'<=50K'
"""


def test_arff_files_are_read_with_their_attribute_names() -> None:
    """OpenML and many UCI sets are handed out as Weka's ARFF."""
    parsed = parse_table("adult.arff", ARFF)
    frame = parsed.frame
    assert parsed.file_format == "arff" and parsed.rows == 3
    assert parsed.columns == ["age", "workclass", "capital gain", "when", "class"]
    assert frame["age"].tolist() == [39, 50, 38]
    assert frame["class"].tolist() == ["<=50K", ">50K", "<=50K"]  # quotes are not the value
    assert pd.isna(frame["workclass"].iloc[2]) and pd.isna(frame["capital gain"].iloc[2])
    assert parsed.missing["workclass"] == {"?": 1}  # as the file wrote it
    assert str(frame["when"].dtype).startswith("datetime64")
    # ARFF's `?` is missing even when the operator does not count "?" as missing elsewhere.
    strict = parse_table("adult.arff", ARFF, missing_tokens=["NA"]).frame
    assert pd.isna(strict["workclass"].iloc[2]) and pd.isna(strict["capital gain"].iloc[2])
    # Unquoted rows, any file name (found by `@relation`), compressed, numbers as names.
    plain = b"@RELATION iris\n@ATTRIBUTE sepallength REAL\n@ATTRIBUTE 1 REAL\n"
    plain += b"@ATTRIBUTE class {setosa,virginica}\n@DATA\n5.1,3.5,setosa\n4.9,?,virginica\n"
    iris = parse_table("iris.txt", plain)
    assert iris.columns == ["sepallength", "1", "class"] and iris.frame["1"].isna().tolist() == [
        False,
        True,
    ]
    assert parse_table("iris.arff.gz", gzip.compress(plain)).frame.equals(iris.frame)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"@relation s\n@attribute a numeric\n@attribute b numeric\n@data\n{0 1}\n{1 2}\n",
            "sparse",
        ),
        (b'@relation r\n@attribute bag relational\n@end bag\n@data\n"1"\n', "relational"),
        (b"@relation n\n@attribute a numeric\n1\n2\n", "no @data"),
        (b"@relation n\n@data\n1\n", "no @attribute"),
    ],
)
def test_arff_that_is_not_one_row_per_line_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(TableError, match=reason):
        parse_table("x.arff", data)


def _stat_file(kind: str, frame: pd.DataFrame, **labels: Any) -> bytes:
    import pyreadstat

    writer = {"sav": pyreadstat.write_sav, "dta": pyreadstat.write_dta}.get(kind)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"f.{kind}"
        if kind == "xpt":
            pyreadstat.write_xport(frame, str(path))
        else:
            writer(frame, str(path), **labels)
        return path.read_bytes()


def test_files_of_statistics_packages_are_read_with_their_labels() -> None:
    """Survey data comes as SPSS, Stata or SAS files: labels are the values, dates are dates."""
    frame = pd.DataFrame(
        {
            "age": [30.0, 41.0, None, 25.0],
            "sex": [1.0, 2.0, 1.0, 99.0],
            "visit": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"]),
            "town": ["Leeds", "York", "Hull", "Leeds"],
        }
    )
    sav = _stat_file(
        "sav",
        frame,
        variable_value_labels={"sex": {1.0: "male", 2.0: "female"}},
        missing_ranges={"sex": [99.0]},  # "refused to answer"
    )
    parsed = parse_table("survey.sav", sav)
    assert parsed.file_format == "spss" and parsed.rows == 4
    assert parsed.frame["sex"].tolist()[:3] == ["male", "female", "male"]
    assert pd.isna(parsed.frame["sex"].iloc[3]) and pd.isna(parsed.frame["age"].iloc[2])
    assert str(parsed.frame["visit"].dtype).startswith("datetime64")
    assert parse_table("upload.bin", sav).file_format == "spss"  # told by its first bytes
    dta = parse_table("survey.dta", _stat_file("dta", frame.assign(sex=[1, 2, 1, 2])))
    assert dta.file_format == "stata" and dta.frame["town"].tolist()[1] == "York"
    xpt = parse_table("survey.xpt", _stat_file("xpt", frame.drop(columns=["visit"])))
    assert xpt.file_format == "xport" and xpt.frame["age"].tolist()[:2] == [30.0, 41.0]


def test_statistics_files_are_refused_with_reason_and_within_limits() -> None:
    with pytest.raises(TableError, match="not a readable SPSS file"):
        parse_table("broken.sav", b"$FL2" + b"\x00garbage" * 100)
    with pytest.raises(TableError, match="not a readable Stata file"):
        parse_table("broken.dta", b"<stata_dta><header>nonsense")
    # A variable record whose type byte is damaged ends the C reader with a segmentation
    # fault: the reader runs in a child process, so this process refuses it and goes on.
    frame = pd.DataFrame({"age": np.arange(200.0), "town": ["Leeds", "York"] * 100})
    labelled = {"sex": {1.0: "m", 2.0: "f"}}
    sav = bytearray(
        _stat_file("sav", frame.assign(sex=[1.0, 2.0] * 100), variable_value_labels=labelled)
    )
    sav[180] = 0xFF  # after the 176-byte file header and the record's type code
    with pytest.raises(TableError, match="the reader stopped on it"):
        parse_table("hostile.sav", bytes(sav))
    many = _stat_file("sav", pd.DataFrame({"a": np.arange(50.0)}))
    with pytest.raises(TableError, match="rows"):
        parse_table("many.sav", many, limits=UploadLimits(max_rows=10))


def test_utf16_without_a_byte_order_mark_and_stray_nul_bytes_are_text() -> None:
    """Database tools write UTF-16 without a byte-order mark, and pad fields with NULs."""
    text = "name,age,city\nZoë,30,Köln\nAnn,41,York\n"
    for data in (text.encode("utf-16-le"), text.encode("utf-16-be")):
        parsed = parse_table("export.csv", data)
        assert parsed.encoding == "utf-16" and parsed.frame["city"].tolist() == ["Köln", "York"]
    padded = parse_table("padded.csv", text.encode().replace(b"30", b"3\x000"))
    assert padded.frame["age"].tolist() == [30, 41]
    with pytest.raises(TableError, match="binary"):
        parse_table("image.csv", bytes(range(256)) * 40)


def test_a_carriage_return_inside_a_row_ends_it_as_the_reader_does() -> None:
    parsed = parse_table("t.csv", b"a,b,c\n1,x\ry,3\n2,z,4\n")
    assert parsed.columns == ["a", "b", "c"] and parsed.rows == 3


def test_a_name_over_several_columns_names_each_of_them() -> None:
    """Reports put a merged `Q1` cell over `sales` and `units`: both are Q1's."""
    data = b"region,Q1,,Q2,\n,sales,units,sales,units\nNorth,100,3,120,4\nSouth,90,2,95,3\n"
    parsed = parse_table("quarters.csv", data)
    assert parsed.columns == ["region", "Q1 sales", "Q1 units", "Q2 sales", "Q2 units"]
    assert parsed.frame["Q2 units"].tolist() == [4, 3]
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["region", "Q1", None, "Q2", None], [None, "sales", "units", "sales", "units"]):
        sheet.append(row)
    sheet.append(["North", 100, 3, 120, 4])
    sheet.append(["South", 90, 2, 95, 3])
    sheet.merge_cells("B1:C1")
    sheet.merge_cells("D1:E1")
    saved = io.BytesIO()
    book.save(saved)
    merged = parse_table("quarters.xlsx", saved.getvalue())
    assert merged.columns == ["region", "Q1 sales", "Q1 units", "Q2 sales", "Q2 units"]


def test_words_for_no_value_among_numbers_are_missing_but_stay_categories_among_words() -> None:
    """`unknown` and `missing` where a number was not recorded are no value; Bank Marketing's
    `education` = `unknown` stays a category."""
    data = b"income,education,weight\n52000,unknown,70.5\nUnknown,university,missing\n"
    data += b"61000,basic,81\nMissing,unknown,n.a.\n48000,basic,Not available\n"
    parsed = parse_table("survey.csv", data)
    frame = parsed.frame
    assert frame["income"].dtype == "float64" and frame["income"].isna().sum() == 2
    assert frame["weight"].dtype == "float64" and frame["weight"].isna().sum() == 3
    assert parsed.missing["income"] == {"Unknown": 1, "Missing": 1}
    assert frame["education"].tolist().count("unknown") == 2
    # A file that writes the same word for its missing numbers means it in text too.
    same = data.replace(b"Unknown,university", b"unknown,university")
    assert parse_table("survey.csv", same).frame["education"].isna().sum() == 2


def test_a_word_that_keeps_numbers_text_is_named() -> None:
    from lib.tabular.number_words import numbers_spoiled_by_words

    rows = [f"{i * 1.5:.1f},{'refused' if i % 20 == 3 else i},{i % 4}" for i in range(100)]
    rows[7] = "x,<0.5,1"
    rows[8] = "x,<0.5,1"
    frame = parse_table("s.csv", ("a,b,c\n" + "\n".join(rows)).encode()).frame
    assert frame["b"].dtype != "float64"
    assert numbers_spoiled_by_words(frame) == {"a": {"x": 2}, "b": {"refused": 5, "<0.5": 2}}
    # One odd cell among codes, and a category of digits and words, are not numbers spoiled.
    assert numbers_spoiled_by_words(pd.DataFrame({"k": ["1", "2", "X9"] * 3 + ["1"] * 30})) == {}
    assert numbers_spoiled_by_words(pd.DataFrame({"k": ["1", "2", "3", "many"] * 10})) == {}
    # a weather log's precipitation: "T" (trace) on 15 % of days
    rain = [f"{i / 100:.2f}" for i in range(85)] + ["T"] * 15
    assert numbers_spoiled_by_words(pd.DataFrame({"precip": rain})) == {"precip": {"T": 15}}
    # years with a few whole dates (a contract's end): the dates are values, not "no value"
    ends = ["2021", "2020", "2022", "2019"] * 40 + ["Jun 30, 2019"] * 20 + ["2019-12-31"] * 3
    assert numbers_spoiled_by_words(pd.DataFrame({"Contract Valid Until": ends})) == {}


def test_a_column_number_token_is_missing_in_that_column_only() -> None:
    data = b"Pregnancies,Insulin,BMI,Outcome\n0,0,33.6,1\n1,94,0,0\n3,0,28.1,0\n0,168,43.1,1\n"
    parsed = parse_table("d.csv", data, missing_tokens=["", "insulin=0", "BMI = 0.0", "BMI=0"])
    frame = parsed.frame
    assert frame["Insulin"].isna().tolist() == [True, False, True, False]
    assert frame["BMI"].isna().tolist() == [False, True, False, False]
    assert frame["Pregnancies"].tolist() == [0, 1, 3, 0] and frame["Outcome"].tolist()[1] == 0
    # Counted once per cell, under the value as the operator wrote it.
    assert parsed.missing == {"Insulin": {"0": 2}, "BMI": {"0.0": 1}}


def test_a_header_of_one_name_many_times_is_numbered_once_through() -> None:
    from lib.tabular.header_row import header_names

    assert header_names(["a", "a", "a_2", "a", ""]) == ["a", "a_3", "a_2", "a_4", "column_5"]
    names = header_names(["a"] * 20_000)
    assert names[-1] == "a_20000" and len(set(names)) == 20_000


def test_any_number_of_blank_lines_above_the_table_is_skipped() -> None:
    for blank in (b"\n", b"\r\n", b"  \t\n", b"\r"):
        frame = parse_table("padded.csv", blank * 200_000 + b"a,b\n1,x\n2,y\n").frame
        assert frame.columns.tolist() == ["a", "b"] and frame["a"].tolist() == [1, 2]
