"""Split step: the dataset version into train and holdout MLTables (the gate's rows).

The file is read by opsdeck's own table reader, which ships beside this script (see
`build.steps_code`): missing-value tokens, numbers written for people, text encodings and
spreadsheets come out as they did at upload. Stratified holdout with a fixed seed, the same
split as opsdeck's local engine, so a gated deploy compares both models on rows the new model
never trained on. The parts are written as Parquet, so their column types survive.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA_FILE = "data.parquet"
MLTABLE = (
    "paths:\n  - file: ./{name}\n"
    "transformations:\n  - read_parquet:\n      include_path_column: false\n"
)
DEFAULT_TOKENS = "defaults"
DEFAULT_SHEET = "found"


def encode_tokens(tokens: list[str] | None) -> str:
    """A token list as one shell-safe word for the step's command line (None: the defaults)."""
    if tokens is None:
        return DEFAULT_TOKENS
    return base64.urlsafe_b64encode(json.dumps(tokens).encode()).decode()


def decode_tokens(word: str) -> list[str] | None:
    if word == DEFAULT_TOKENS:
        return None
    return [str(t) for t in json.loads(base64.urlsafe_b64decode(word.encode()))]


def encode_sheet(sheet: str | None) -> str:
    """A workbook sheet's name as one shell-safe word (None: the sheet holding the table)."""
    if not sheet:
        return DEFAULT_SHEET
    return base64.urlsafe_b64encode(json.dumps(sheet).encode()).decode()


def decode_sheet(word: str) -> str | None:
    if word == DEFAULT_SHEET:
        return None
    return str(json.loads(base64.urlsafe_b64decode(word.encode())))


def read(
    path: Path, missing_tokens: list[str] | None = None, sheet: str | None = None
) -> pd.DataFrame:
    """The dataset's table as opsdeck read it at upload, without the upload's size limits."""
    # `lib/` sits beside this script in the code snapshot (on sys.path as the script's folder).
    from lib.settings import UploadLimits
    from lib.tabular import parse_table

    if path.is_dir():
        path = next(p for p in sorted(path.iterdir()) if p.is_file())
    unbounded = UploadLimits(
        max_upload_bytes=sys.maxsize,
        max_rows=sys.maxsize,
        max_columns=sys.maxsize,
        max_uncompressed_bytes=sys.maxsize,
    )
    return parse_table(
        path.name, path.read_bytes(), limits=unbounded, missing_tokens=missing_tokens, sheet=sheet
    ).frame


def holdout_positions(
    frame: pd.DataFrame, target: str, task: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """(labelled rows, sorted positions of the holdout among them)."""
    from sklearn.model_selection import train_test_split

    data = frame[frame[target].notna()].reset_index(drop=True)
    stratify = None
    if task == "classification":
        classes = sorted(data[target].unique().tolist(), key=lambda v: (str(type(v)), v))
        code = {c: i for i, c in enumerate(classes)}
        stratify = np.array([code[v] for v in data[target].tolist()], dtype=np.int64)
    _, rows = train_test_split(
        np.arange(len(data)), test_size=fraction, random_state=seed, stratify=stratify
    )
    return data, np.sort(rows)


def write_table(frame: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / DATA_FILE, index=False)
    (folder / "MLTable").write_text(MLTABLE.format(name=DATA_FILE))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--missing_tokens", default=DEFAULT_TOKENS)
    parser.add_argument("--sheet", default=DEFAULT_SHEET)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", default="classification")
    parser.add_argument("--holdout_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--all", type=Path, required=True)
    args = parser.parse_args(argv)
    frame = read(args.data, decode_tokens(args.missing_tokens), decode_sheet(args.sheet))
    data, rows = holdout_positions(frame, args.target, args.task, args.holdout_fraction, args.seed)
    keep = np.ones(len(data), dtype=bool)
    keep[rows] = False
    write_table(data[keep], args.train)
    write_table(data.iloc[rows], args.valid)
    write_table(data, args.all)
    logging.info("split %d rows: %d train, %d holdout", len(data), keep.sum(), len(rows))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
