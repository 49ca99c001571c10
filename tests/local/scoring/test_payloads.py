"""The three request shapes parsed, records validated against the columns, the limits."""

from __future__ import annotations

import pytest

from lib.local.scoring.app import ScoringSettings
from lib.local.scoring.payloads import (
    CATEGORIES_LISTED,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    Column,
    InputError,
    number_as_text,
    parse_json,
    parse_payload,
    validate_records,
)

COLUMNS = [
    Column("age", "integer"),
    Column("balance", "number"),
    Column("job", "string"),
    Column("flag", "boolean", required=False),
]


GOOD = {"age": 41, "balance": 10.5, "job": "admin.", "flag": True}


def test_parse_payload_recognises_the_three_shapes():
    p = parse_payload({"data": [GOOD]})
    assert (p.shape, p.method, p.records) == ("data", "predict", [GOOD])
    p = parse_payload({"Inputs": {"data": [GOOD]}, "GlobalParameters": {"method": "predict_proba"}})
    assert (p.shape, p.method) == ("inputs", "predict_proba")
    p = parse_payload({"input_data": {"columns": ["age", "job"], "index": [7], "data": [[3, "x"]]}})
    assert (p.shape, p.records) == ("input_data", [{"age": 3, "job": "x"}])
    assert parse_payload({"data": [GOOD]}, query_method="predict_proba").method == "predict_proba"
    assert (
        parse_payload({"input_data": [GOOD], "params": {"method": "predict_proba"}}).method
        == "predict_proba"
    )


@pytest.mark.parametrize(
    ("payload", "query", "needle"),
    [
        ([1, 2], None, "JSON object"),
        ({"rows": []}, None, "'data', 'Inputs' or 'input_data'"),
        ({"data": [], "extra": 1}, None, "'extra'"),
        ({"data": {"a": 1}}, None, "'data' must be a list"),
        ({"Inputs": [GOOD]}, None, "'Inputs' must be an object"),
        ({"Inputs": {}}, None, "Inputs.data"),
        (
            {"Inputs": {"data": [GOOD]}, "GlobalParameters": {"method": "explain"}},
            None,
            "GlobalParameters.method",
        ),
        (
            {"Inputs": {"data": [GOOD]}, "GlobalParameters": {"foo": 1}},
            None,
            "GlobalParameters.'foo'",
        ),
        ({"input_data": {"columns": ["a"], "data": [[1, 2]]}}, None, "input_data.data[0]"),
        ({"input_data": {"columns": ["a", "a"], "data": [[1, 2]]}}, None, "twice"),
        (
            {"input_data": {"columns": ["a"], "index": [0, 1], "data": [[1]]}},
            None,
            "input_data.index",
        ),
        ({"input_data": {"columns": "a", "data": []}}, None, "input_data.columns"),
        ({"data": [GOOD]}, "explain", "Query parameter 'method'"),
        ({"data": [GOOD], "method": "predict"}, "predict_proba", "query string"),
    ],
)
def test_parse_payload_rejects_with_the_field_named(payload, query, needle):
    with pytest.raises(InputError) as err:
        parse_payload(payload, query)
    assert needle in str(err.value)
    assert err.value.status == 400


@pytest.mark.parametrize(
    "body", [b"", b"  ", b"{", b"NaN", b'{"data": [{"a": NaN}]}', b"\xff\xfe\x00", b"[" * 100_000]
)
def test_parse_json_rejects_non_json(body):
    with pytest.raises(InputError):
        parse_json(body)


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"balance": 1.0, "job": "x"}, "missing column 'age'"),
        ({**GOOD, "zip": 1}, "unknown column 'zip'"),
        ({**GOOD, "age": "forty"}, "column 'age': expected an integer"),
        ({**GOOD, "age": 41.5}, "column 'age': expected an integer"),
        ({**GOOD, "balance": "abc"}, "column 'balance': expected a number"),
        ({**GOOD, "balance": "inf"}, "column 'balance': expected a number"),
        ({**GOOD, "balance": True}, "column 'balance': expected a number"),
        ({**GOOD, "balance": [1]}, "column 'balance': expected a number"),
        ({**GOOD, "job": True}, "column 'job': expected a string"),
        ({**GOOD, "job": 1e999}, "column 'job': expected a string"),
        ({**GOOD, "job": {"a": 1}}, "column 'job': expected a string"),
        ({**GOOD, "flag": "yes"}, "column 'flag': expected true or false"),
        ({**GOOD, "balance": 10**400}, "column 'balance': number out of range"),
    ],
)
def test_validate_records_names_row_and_column(record, needle):
    with pytest.raises(InputError) as err:
        validate_records([dict(GOOD), record], COLUMNS, 10)
    assert "Row 1" in str(err.value)
    assert needle in str(err.value)


def test_validate_records_accepts_and_normalises():
    rows = [
        {"age": 41, "balance": 3, "job": "x"},  # int for a float, optional column absent
        {"age": "42", "balance": " 1.5 ", "job": None, "flag": None},  # numeric strings, nulls
        {"age": 43.0, "balance": None, "job": "y", "flag": False},  # integral float for an int
    ]
    validate_records(rows, COLUMNS, 10)
    assert rows[0]["flag"] is None
    assert rows[1]["age"] == 42 and rows[1]["balance"] == 1.5
    assert rows[2]["age"] == 43 and type(rows[2]["age"]) is int


def test_a_row_as_the_uploaded_file_wrote_it_is_read_as_the_upload_read_it():
    """Money, thousands, percent and accounting text are the numbers the upload read; an empty
    cell is missing; the training table's left-out columns are dropped, others refused."""
    rows = [
        {**GOOD, "balance": "$1,234.50", "customer": "C001"},
        {**GOOD, "balance": "(5)", "customer": "C002"},
        {**GOOD, "balance": "12%"},
        {**GOOD, "balance": "  "},
    ]
    validate_records(rows, COLUMNS, 10, ignored=frozenset({"customer"}))
    assert [r["balance"] for r in rows] == [1234.5, -5.0, 12.0, None]
    assert all("customer" not in r for r in rows)
    with pytest.raises(InputError, match="expected a number"):
        validate_records([{**GOOD, "balance": "1,5"}], COLUMNS, 10)
    with pytest.raises(InputError, match="unknown column 'customer'"):
        validate_records([{**GOOD, "customer": "C001"}], COLUMNS, 10)


def test_column_names_as_the_uploaded_header_spaced_them_are_read():
    """A header's " balance " and "job  title" were named "balance" and "job title" at upload;
    a client sending the file's own header is understood."""
    columns = [*COLUMNS, Column("job title", "string", required=False)]
    rows = [{"age": 41, " balance ": 2.5, "job": "x", "job  title": "cook", " customer": "C1"}]
    validate_records(rows, columns, 10, ignored=frozenset({"customer"}))
    assert rows[0]["balance"] == 2.5 and rows[0]["job title"] == "cook"
    assert " balance " not in rows[0] and " customer" not in rows[0]
    # the exact name wins when both are sent; other names are still unknown
    with pytest.raises(InputError, match="unknown column ' balance '"):
        validate_records([{**GOOD, " balance ": 3}], COLUMNS, 10)
    with pytest.raises(InputError, match="unknown column 'bal ance'"):
        validate_records([{"age": 1, "bal ance": 3, "job": "x"}], COLUMNS, 10)


def test_a_number_for_a_text_column_is_its_text():
    """As a CSV cell holding it reads: 22 -> "22", 19.9667 -> "19.9667", 1.0 -> "1.0"."""
    rows = [{**GOOD, "job": v} for v in (22, 19.9667, 1.0, -3, 0.1 + 0.2, 10**20)]
    validate_records(rows, COLUMNS, 10)
    assert [r["job"] for r in rows] == [
        "22",
        "19.9667",
        "1.0",
        "-3",
        "0.30000000000000004",
        "100000000000000000000",
    ]
    assert number_as_text(True) is None and number_as_text(float("nan")) is None


def test_a_category_sent_in_another_case_or_as_a_json_boolean_is_the_category():
    """Spaceship Titanic's CryoSleep (True/False with blanks, so text): JSON true and "true"
    were refused or read as an unknown value, i.e. missing, without a word."""
    columns = [
        Column("CryoSleep", "string", categories=("False", "True")),
        Column("job", "string", categories=("admin.", "blue-collar")),
        Column("code", "string", categories=("a", "A")),  # case tells these apart
        Column("VIP", "boolean"),
    ]
    rows = [
        {"CryoSleep": True, "job": "Admin.", "code": "a", "VIP": "TRUE"},
        {"CryoSleep": "false", "job": " BLUE-COLLAR ", "code": "A", "VIP": "false"},
        {"CryoSleep": "True", "job": "retired", "code": "b", "VIP": False},
    ]
    validate_records(rows, columns, 10)
    assert [r["CryoSleep"] for r in rows] == ["True", "False", "True"]
    assert [r["job"] for r in rows] == ["admin.", "blue-collar", "retired"]  # unknown stays
    assert [r["code"] for r in rows] == ["a", "A", "b"]
    assert [r["VIP"] for r in rows] == [True, False, False]
    with pytest.raises(InputError, match="expected true or false"):
        validate_records([{**rows[0], "VIP": "maybe"}], columns, 10)
    # a list cut at the spec's limit may leave out a category the model knows: not respelled
    many = Column("city", "string", categories=tuple(f"c{i}" for i in range(CATEGORIES_LISTED)))
    rec = [{"city": "C1"}]
    validate_records(rec, [many], 1)
    assert rec[0]["city"] == "C1"


def test_a_zero_padded_code_sent_as_a_json_number_is_the_code():
    """ZIP codes read by a client's number parser arrive as 6511 for "06511"."""
    zips = Column("zip", "string", categories=("02134", "06511", "94105"))
    codes = Column("code", "string", categories=("7", "12", "301"))  # not padded: as sent
    rows = [{"zip": 6511, "code": 7}, {"zip": 2134.0, "code": 12}, {"zip": 94105, "code": 5}]
    validate_records(rows, [zips, codes], 10)
    assert [r["zip"] for r in rows] == ["06511", "02134", "94105"]
    assert [r["code"] for r in rows] == ["7", "12", "5"]
    rows = [{"zip": 123456, "code": 1}, {"zip": 501, "code": 1}]  # too wide; a new code
    validate_records(rows, [zips, codes], 10)
    assert [r["zip"] for r in rows] == ["123456", "00501"]


def test_a_blank_header_cells_column_is_known_by_the_names_clients_give_it():
    """A file written by DataFrame.to_csv() has a blank first header cell, named column_1 at
    upload; pandas reads it back as "Unnamed: 0", csv.DictReader as ""."""
    columns = [Column("column_1", "integer"), Column("age", "integer")]
    for key in ("Unnamed: 0", ""):
        rows = [{key: 3, "age": 40}]
        validate_records(rows, columns, 10)
        assert rows == [{"column_1": 3, "age": 40}]
    rows = [{"Unnamed: 0": 3, "age": 40}]  # an index column the model left out
    validate_records(rows, [columns[1]], 10, ignored=frozenset({"column_1"}))
    assert rows == [{"age": 40}]
    with pytest.raises(InputError, match="unknown column 'Unnamed: 5'"):
        validate_records([{"Unnamed: 5": 3, "age": 40}], columns, 10)


def test_a_missing_value_word_for_a_number_is_a_missing_number():
    """House Prices' LotFrontage = "NA": the upload read it as missing, the endpoint said
    'expected a number, got "NA"'; a word that is not a missing-value token still is refused."""
    rows = [{**GOOD, "age": a, "balance": b} for a, b in (("NA", "N/A"), (" ? ", "null"))]
    validate_records(rows, COLUMNS, 10)
    assert [(r["age"], r["balance"]) for r in rows] == [(None, None), (None, None)]
    with pytest.raises(InputError, match="expected a number"):
        validate_records([{**GOOD, "balance": "lots"}], COLUMNS, 10)
    with pytest.raises(InputError, match="cannot be missing"):
        validate_records([{**GOOD, "age": "NA"}], COLUMNS, 10, allow_null_integers=False)


def test_a_date_is_read_or_refused_never_scored_as_missing_unsaid():
    columns = [
        Column("when", "string", date_format="%m/%d/%Y"),
        Column("at", "string", date_format=""),
    ]
    rows = [
        {"when": "03/15/2023", "at": "2023-03-15T08:00:00Z"},
        {"when": " ", "at": "NA"},
        {"when": "2023-03-15", "at": None},
    ]
    validate_records(rows, columns, 10)
    assert rows[1] == {"when": None, "at": None} and rows[0]["when"] == "03/15/2023"
    for bad in ("March 5, 2023", "13/45/2023", 1678838400, True):
        with pytest.raises(InputError, match="column 'when': expected a date") as err:
            validate_records([{"when": bad, "at": None}], columns, 10)
        assert "e.g. 05/31/2024" in str(err.value)
    with pytest.raises(InputError, match=r"expected a date \(ISO 8601, 2024-05-31 or"):
        validate_records([{"when": None, "at": "03/15/2023"}], columns, 10)


def test_a_nested_object_is_read_under_the_uploads_column_names():
    """A JSON-lines upload named a nested object's fields `profile.age`; the same record
    posted to the endpoint was 'unknown column profile'."""
    columns = [
        Column("profile.age", "integer"),
        Column("profile.address.city", "string"),
        Column("plan", "string"),
    ]
    rows = [{"profile": {"age": 31, "address": {"city": "Lyon"}}, "plan": "a"}]
    validate_records(rows, columns, 10)
    assert rows == [{"profile.age": 31, "profile.address.city": "Lyon", "plan": "a"}]
    listed = [{"profile.age": 31, "profile.address.city": None, "plan": ["a", "é"]}]
    validate_records(listed, columns, 10)
    assert listed[0]["plan"] == '["a", "é"]'  # a list as the upload kept it: its JSON text
    with pytest.raises(InputError, match="unknown column 'profile.shoe'"):
        validate_records([{"profile": {"age": 31, "shoe": 42}, "plan": "a"}], columns, 10)


def test_the_category_limit_is_the_feature_specs():
    import inspect

    from lib.local.tabular_model import Encoder

    limit = inspect.signature(Encoder.from_frame).parameters["max_categories"].default
    assert limit == CATEGORIES_LISTED


def test_validate_records_limits_and_null_integers():
    with pytest.raises(InputError, match="Too many rows: 3") as err:
        validate_records([dict(GOOD) for _ in range(3)], COLUMNS, 2)
    assert err.value.status == 413
    with pytest.raises(InputError, match="No rows"):
        validate_records([], COLUMNS, 2)
    with pytest.raises(InputError, match="Row 0, column 'age'.*cannot be null"):
        validate_records([{**GOOD, "age": None}], COLUMNS, 2, allow_null_integers=False)
    with pytest.raises(InputError, match="Row 0: expected a JSON object"):
        validate_records([[1, 2]], COLUMNS, 2)


def test_default_limits():
    s = ScoringSettings()
    assert (
        (s.max_rows, s.max_bytes)
        == (DEFAULT_MAX_ROWS, DEFAULT_MAX_BYTES)
        == (10_000, 10 * 1024 * 1024)
    )
