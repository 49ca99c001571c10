"""Verification of a compiled model against the native ``TabularModel`` it was compiled from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lib.local.fastpath.model import CompiledModel

if TYPE_CHECKING:
    import pandas as pd

    from lib.local.tabular_model import TabularModel

PROB_TOLERANCE = 1e-9


def verify(model: TabularModel, compiled: CompiledModel, frame: pd.DataFrame) -> dict[str, Any]:
    """Score ``frame`` both ways; ``ok`` only if labels match and scores agree within 1e-9."""
    report: dict[str, Any] = {
        "rows": int(len(frame)),
        "max_abs_diff": 0.0,
        "label_mismatches": 0,
        "encoding_mismatches": 0,
        "ok": False,
        "error": None,
    }
    records = frame.to_dict("records")
    ref_x = model.encoder.encode_frame(frame)
    got_x = compiled.encode_records(records)
    same = (ref_x == got_x) | (np.isnan(ref_x) & np.isnan(got_x))
    report["encoding_mismatches"] = int((~same.all(axis=1)).sum())
    try:
        ref_labels = list(model.predict(None, frame))
        ref = (
            model.predict_proba_frame(frame)
            if model.task == "classification"
            else np.asarray(ref_labels, dtype=np.float64)
        )
    except ValueError as exc:
        ref_error = exc
    else:
        ref_error = None
    try:
        got_labels = compiled.predict_records(records)
        got = (
            np.asarray(compiled.predict_proba_records(records), dtype=np.float64)
            if compiled.task == "classification"
            else np.asarray(got_labels, dtype=np.float64)
        )
    except ValueError as exc:
        got_error = exc
    else:
        got_error = None
    if ref_error is not None or got_error is not None:
        report["error"] = f"native: {ref_error!r}; compiled: {got_error!r}"
        report["ok"] = ref_error is not None and got_error is not None
        return report
    got = got.reshape(ref.shape)
    diff = np.abs(got - ref)
    if compiled.task != "classification":
        diff = diff / np.maximum(1.0, np.abs(ref))  # relative beyond magnitude 1
    report["max_abs_diff"] = float(diff.max()) if diff.size else 0.0
    report["label_mismatches"] = (
        sum(a != b for a, b in zip(ref_labels, got_labels, strict=True))
        if compiled.task == "classification"
        else 0
    )
    report["ok"] = bool(
        report["label_mismatches"] == 0
        and report["max_abs_diff"] <= PROB_TOLERANCE
        and np.array_equal(np.isnan(ref), np.isnan(got))
    )
    return report
