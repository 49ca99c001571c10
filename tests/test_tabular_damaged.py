"""Damaged uploads: every reader refuses a corrupted file with a TableError, never another
exception (which the page would show as a crash) and never a hang."""

from __future__ import annotations

import gzip
import io
import random
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from lib.tabular import TableError, parse_table, to_parquet_bytes

MUTANTS = 300


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.arange(200.0),
            "town": ["Leeds", "York"] * 100,
            "when": pd.date_range("2020-01-01", periods=200),
        }
    )


def _originals() -> dict[str, bytes]:
    frame = _frame()
    text = frame.to_csv(index=False).encode()
    sheet = io.BytesIO()
    frame.to_excel(sheet, index=False)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("t.csv", text)
        z.writestr("readme.txt", "about")
    arff = b"@relation t\n@attribute a numeric\n@attribute b {x,y}\n@data\n"
    return {
        "t.csv": text,
        "t.csv.gz": gzip.compress(text),
        "t.zip": archive.getvalue(),
        "t.xlsx": sheet.getvalue(),
        "t.parquet": to_parquet_bytes(frame),
        "t.arff": arff + b"".join(b"%d,'x'\n" % i for i in range(200)),
        "t.json": frame.to_json(orient="records", date_format="iso").encode(),
        "t.html": frame.to_html(index=False).encode(),
    }


@pytest.mark.parametrize("name", sorted(_originals()))
def test_corrupted_files_are_read_or_refused_with_reason(name: str) -> None:
    original = _originals()[name]
    rng = random.Random(name)
    intact = parse_table(name, original).frame
    outcomes = {"read": 0, "refused": 0, "changed": 0}
    for _ in range(MUTANTS):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice(
                (0, 13, 0x7F, 0x80, 0xFF, rng.randrange(256))
            )
        if rng.random() < 0.2:
            data = data[: rng.randrange(1, len(data))]
        started = time.monotonic()
        try:
            frame = parse_table(name, bytes(data)).frame
            outcomes["read"] += 1
            outcomes["changed"] += not frame.equals(intact)
        except TableError as exc:
            assert str(exc)
            outcomes["refused"] += 1
        assert time.monotonic() - started < 10
    # The corruption reached the reader: refused, or read as something else (a web page's
    # lexer reads most damaged pages).
    assert outcomes["refused"] + outcomes["changed"] > 0
