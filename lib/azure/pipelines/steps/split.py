"""Split step: the dataset version into train and holdout MLTables (the gate's rows).

Stratified holdout with a fixed seed, the same split as opsdeck's local engine, so a gated
deploy compares both models on rows the new model never trained on.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

MLTABLE = (
    "paths:\n  - file: ./{name}\ntransformations:\n  - read_delimited:\n"
    "      delimiter: ','\n      encoding: utf8\n      header: all_files_same_headers\n"
)


def read(path: Path, file_format: str, delimiter: str, encoding: str) -> pd.DataFrame:
    if path.is_dir():
        path = next(p for p in sorted(path.iterdir()) if p.is_file())
    if file_format == "parquet":
        return pd.read_parquet(path)
    if file_format == "excel":
        return pd.read_excel(path, sheet_name=0, engine="calamine")
    return pd.read_csv(path, sep=delimiter, encoding=encoding)


def holdout_positions(
    frame: pd.DataFrame, target: str, task: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """(labelled rows, sorted positions of the holdout among them)."""
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
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "MLTable").write_text(MLTABLE.format(name="data.csv"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--file_format", default="csv")
    parser.add_argument("--delimiter", default=",")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", default="classification")
    parser.add_argument("--holdout_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--all", type=Path, required=True)
    args = parser.parse_args(argv)
    frame = read(args.data, args.file_format, args.delimiter, args.encoding)
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
