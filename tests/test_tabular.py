import io

import pandas as pd
import pytest

from lib.tabular import TableError, detect_format, parse_table, profile_frame, to_parquet_bytes


def test_sniffs_semicolon_and_tab_delimiters() -> None:
    semi = parse_table("a.csv", b"x;y;label\n1;2.5;yes\n3;4.5;no\n")
    assert list(semi.frame.columns) == ["x", "y", "label"]
    assert semi.delimiter == ";"
    assert semi.frame["y"].tolist() == [2.5, 4.5]
    tab = parse_table("a.tsv", b"x\ty\n1\t2\n3\t4\n")
    assert tab.delimiter == "\t" and tab.frame.shape == (2, 2)


def test_single_column_csv() -> None:
    parsed = parse_table("one.csv", b"value\n1\n2\n3\n")
    assert parsed.frame["value"].tolist() == [1, 2, 3]


def test_latin1_and_utf8_bom() -> None:
    latin = "city,n\nZürich,1\nMálaga,2\n".encode("latin-1")
    parsed = parse_table("l.csv", latin)
    assert parsed.encoding == "latin-1"
    assert parsed.frame["city"].tolist() == ["Zürich", "Málaga"]
    bom = "\ufeffcity,n\nZürich,1\n".encode()
    parsed = parse_table("u.csv", bom)
    assert parsed.encoding == "utf-8"
    assert list(parsed.frame.columns) == ["city", "n"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"1,2,3\n4,5,6\n", "no header"),
        (b"a,b,a\n1,2,3\n", "Duplicate column names: 'a'"),
        (b"a,,c\n1,2,3\n", "no name"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,2\n\x00\x01\x02", "binary"),
    ],
)
def test_bad_csv_is_rejected_with_reason(data: bytes, message: str) -> None:
    with pytest.raises(TableError, match=message):
        parse_table("bad.csv", data)


def test_size_limit() -> None:
    with pytest.raises(TableError, match="over the 0 MB limit"):
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
