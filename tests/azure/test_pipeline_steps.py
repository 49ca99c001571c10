"""The scripts Azure runs as pipeline steps agree with opsdeck's own rules.

Inside Azure they have only their code snapshot (the scripts and opsdeck's table reader), so
they restate the holdout split and the gate; these tests hold the two together, and run the
split script end to end on local files, once from a built snapshot on its own.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lib.azure.pipelines import steps
from lib.azure.pipelines.build import steps_code
from lib.pipeline_gate import decide, validation_rows
from lib.tabular import MISSING_TOKENS, parse_table

sys.path.insert(0, steps.__path__[0])  # the scripts import each other as top-level modules
from lib.azure.pipelines.steps import deploy, gate, split  # noqa: E402


def bank_like(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    age = rng.integers(18, 90, n)
    y = np.where(age + rng.normal(0, 15, n) > 60, "yes", "no").astype(object)
    y[::53] = None
    return pd.DataFrame({"age": age, "balance": rng.normal(1000, 500, n).round(2), "y": y})


def test_split_script_writes_the_same_holdout_as_opsdeck(tmp_path) -> None:
    frame = bank_like()
    source = tmp_path / "bank.csv"
    frame.to_csv(source, index=False)
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    split.main(
        [
            "--data",
            str(source),
            "--target",
            "y",
            "--holdout_fraction",
            "0.25",
            *[arg for name, path in out.items() for arg in (f"--{name}", str(path))],
        ]
    )
    valid = pd.read_parquet(out["valid"] / "data.parquet")
    train = pd.read_parquet(out["train"] / "data.parquet")
    X, y = validation_rows(frame, "y", "classification", "holdout", 0.25)
    assert valid["age"].tolist() == X["age"].tolist()
    assert valid["y"].tolist() == y.tolist()
    assert len(train) + len(valid) == frame["y"].notna().sum()
    assert "read_parquet" in (out["valid"] / "MLTable").read_text()


def test_split_script_reads_a_spreadsheet_dataset(tmp_path) -> None:
    frame = bank_like(120)
    source = tmp_path / "bank.xlsx"
    frame.to_excel(source, index=False, engine="openpyxl")
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    split.main(
        ["--data", str(source), "--target", "y"]
        + [arg for name, path in out.items() for arg in (f"--{name}", str(path))]
    )
    every = pd.read_parquet(out["all"] / "data.parquet")
    assert every["age"].tolist() == frame.loc[frame["y"].notna(), "age"].tolist()


MESSY = (
    "name;age;fare;joined;y\n"
    "Zoë;?;1.234,50 €;25/01/2024;yes\n"
    "Ann;38;#N/A;26/01/2024;no\n"
    "Bob;refused;7,25 €;27/01/2024;no\n"
    "Cid;41;12,00 €;;yes\n"
).encode("cp1252")


def _split(source, out, tokens=None) -> None:
    split.main(
        ["--data", str(source), "--target", "y", "--holdout_fraction", "0.5"]
        + (["--missing_tokens", split.encode_tokens(tokens)] if tokens is not None else [])
        + [arg for name, path in out.items() for arg in (f"--{name}", str(path))]
    )


def test_split_script_reads_a_file_as_its_upload_did(tmp_path) -> None:
    """Tokens, decimal commas, currency, day-first dates and Windows-1252 text, as opsdeck read
    them at upload, and the dataset version's own tokens."""
    source = tmp_path / "messy.csv"
    source.write_bytes(MESSY)
    tokens = [*MISSING_TOKENS, "refused"]
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    _split(source, out, tokens)
    every = pd.read_parquet(out["all"] / "data.parquet")
    uploaded = parse_table("messy.csv", MESSY, missing_tokens=tokens).frame
    pd.testing.assert_frame_equal(every, uploaded, check_dtype=False)
    assert every["age"].isna().tolist() == [True, False, True, False]
    assert every["fare"].tolist()[::2] == [1234.5, 7.25]
    assert every["joined"].iloc[0] == pd.Timestamp("2024-01-25")
    assert every["name"].iloc[0] == "Zoë"
    # without the version's own token, "refused" makes age a text column, as at upload
    _split(source, out)
    assert pd.read_parquet(out["all"] / "data.parquet")["age"].tolist()[2] == "refused"


def test_split_script_reads_the_registered_sheet(tmp_path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["survey", "2024"])
    book.active.append(["by", "office"])
    data = book.create_sheet("Answers")
    data.append(["age", "y"])
    for i in range(20):
        data.append([20 + i, "yes" if i % 2 else "no"])
    source = tmp_path / "survey.xlsx"
    book.save(source)
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    split.main(
        ["--data", str(source), "--target", "y", "--sheet", split.encode_sheet("Answers")]
        + [arg for name, path in out.items() for arg in (f"--{name}", str(path))]
    )
    assert pd.read_parquet(out["all"] / "data.parquet")["age"].tolist()[:2] == [20, 21]
    assert split.decode_sheet(split.encode_sheet(None)) is None


def test_the_steps_code_snapshot_runs_on_its_own(tmp_path) -> None:
    """The folder Azure uploads holds everything the split step imports from opsdeck."""
    code = steps_code()
    assert steps_code() == code  # named by its contents: built once
    source = tmp_path / "messy.csv"
    source.write_bytes(MESSY)
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = (
        "import runpy, sys; sys.argv = sys.argv[1:]; sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0]);"
        "import lib.tabular; assert lib.tabular.__file__.startswith(sys.path[0]), lib.tabular.__file__;"
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(code / "split.py"),
            "--data",
            str(source),
            "--target",
            "y",
            "--holdout_fraction",
            "0.5",
        ]
        + [arg for name, path in out.items() for arg in (f"--{name}", str(path))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert pd.read_parquet(out["all"] / "data.parquet")["fare"].iloc[0] == 1234.5


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "margin"),
    [
        ("AUC_weighted", 0.93, 0.91, 0.0),
        ("AUC_weighted", 0.91, 0.91, 0.0),
        ("AUC_weighted", 0.92, 0.91, 0.02),
        ("log_loss", 0.2, 0.25, 0.0),
        ("rmse", 9.0, 10.0, 2.0),
        ("accuracy", 0.8, None, 0.5),
        ("accuracy", math.nan, 0.8, 0.0),
    ],
)
def test_gate_script_decides_as_opsdeck(metric, challenger, champion, margin) -> None:
    assert gate.decide(metric, challenger, champion, margin) == decide(
        metric, challenger, champion, margin
    )


@pytest.mark.parametrize(
    "metric", ["AUC_weighted", "accuracy", "precision_score_weighted", "log_loss"]
)
def test_gate_script_metrics_match_the_engines(metric: str) -> None:
    from lib.local.automl_engine import compute_metrics

    frame = bank_like().dropna()
    X, y = frame[["age", "balance"]], frame["y"]
    model = LogisticRegression(max_iter=500).fit(X, y)
    ours = gate.metric_value(metric, y, model, X, "classification")
    codes = np.array([list(model.classes_).index(v) for v in y])
    engine = compute_metrics("classification", codes, model.predict_proba(X), 0.5)[metric]
    assert ours == pytest.approx(engine, abs=1e-9)


def test_deploy_script_alternates_blue_and_green() -> None:
    assert deploy.next_colour({}) == "blue"
    assert deploy.next_colour({"blue": 100}) == "green"
    assert deploy.next_colour({"green": 100, "blue": 0}) == "blue"
