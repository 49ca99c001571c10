"""Reading a spreadsheet's first sheet: calamine (what uploads use) against openpyxl's read-only mode.

Writes one .xlsx of `--rows` rows (10 numbers, a date-time and a label per row) with openpyxl,
then reads every cell back with each reader, interleaved, `--rounds` times:

    .venv/bin/python bench/spreadsheet_read.py [--rows 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from datetime import datetime, timedelta

import numpy as np
import openpyxl
from python_calamine import CalamineWorkbook


def workbook(rows: int) -> bytes:
    rng = np.random.default_rng(0)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([f"c{i}" for i in range(10)] + ["when", "label"])
    start = datetime(2024, 1, 1)
    for i in range(rows):
        numbers = [float(x) for x in rng.normal(size=10).round(3)]
        sheet.append([*numbers, start + timedelta(hours=i), "ab"[i % 2]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_openpyxl(data: bytes) -> int:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    cells = sum(len(row) for row in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return cells


def with_calamine(data: bytes) -> int:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return sum(len(row) for row in sheet.iter_rows())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = workbook(args.rows)
    seconds: dict[str, list[float]] = {"openpyxl": [], "calamine": []}
    for _ in range(args.rounds):
        for name, read in (("openpyxl", with_openpyxl), ("calamine", with_calamine)):
            t = time.perf_counter()
            cells = read(data)
            seconds[name].append(time.perf_counter() - t)
            assert cells == (args.rows + 1) * 12, (name, cells)
    slow, fast = (statistics.median(seconds[k]) for k in ("openpyxl", "calamine"))
    print(
        f"spreadsheet: {args.rows:,} rows x 12 ({len(data) / 1e6:.1f} MB), median of "
        f"{args.rounds}: calamine {fast:.2f} s vs openpyxl read-only {slow:.2f} s, "
        f"{slow / fast:.1f}x"
    )


if __name__ == "__main__":
    main()
