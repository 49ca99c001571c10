"""HTTP client for any scoring endpoint (local or Azure), plus copy-paste snippets.

Speaks the three request shapes of the scoring contract: `data` (classic AutoML v1),
`inputs` (AutoML v2 `Inputs`/`GlobalParameters`) and `input_data` (Azure MLflow deployments).
"""

from __future__ import annotations

import json
import math
import pprint
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as time_of_day
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    import pandas as pd

SHAPES = ("data", "inputs", "input_data")
METHODS = ("predict", "predict_proba")
# Said where an endpoint can only answer labels (see `request_for`).
# The Score form's fields at most: a model of thousands of columns (gene expression) gets the
# first ones; a form of thousands of inputs does not render in well under a second.
FORM_FIELDS_MAX = 60
LABELS_ONLY = (
    "This endpoint answers predicted labels only: Azure's MLflow (no-code) deployments call the "
    "model's predict, never predict_proba. Class probabilities need a deployment with AutoML's "
    "scoring script (scoring_file_v_2_0_0.py), or the local backend."
)


def request_for(shape: str, probabilities: bool) -> tuple[str, str]:
    """(shape, method) for an endpoint that accepts `shape`: probabilities when it can give them.

    Azure's MLflow scoring script ignores any `method` (it calls predict), so asking it for
    `predict_proba` would read labels as probabilities.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return shape, "predict_proba" if probabilities else "predict"


class ScoringError(Exception):
    """The endpoint answered with an error (or could not be reached); `message` is the server's."""

    def __init__(self, message: str, status_code: int | None = None, raw: Any = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}" if status_code else message)
        self.message = message
        self.status_code = status_code
        self.raw = raw


class BatchScoringError(ScoringError):
    """A batch stopped at a failed request: `scored` holds the rows answered before it (with
    their predictions), `first` the failed request's first row (0-based)."""

    def __init__(self, failed: ScoringError, scored: Any, first: int, rows: int) -> None:
        super().__init__(failed.message, failed.status_code, failed.raw)
        self.scored = scored
        self.first = first
        self.rows = rows

    def in_file_terms(self) -> str:
        """The server's message with its row counted in the file ('Row 2' of a request of rows
        11-15 is row 13)."""
        return _REQUEST_ROW.sub(lambda m: f"Row {self.first + int(m.group(1)) + 1:,}", self.message)


_REQUEST_ROW = re.compile(r"\bRow (\d+)\b")


@dataclass
class ScoreResponse:
    predictions: list | None
    probabilities: list[list[float]] | None
    status_code: int
    latency_ms: float
    raw: Any
    classes: list | None = None


def _clean(value: Any) -> Any:
    # NaN is not JSON: send it as null, which the scoring contract reads as "missing".
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and value.__class__.__name__ in ("NAType", "NaTType"):
        return None
    # A date column of a file read for batch scoring: ISO 8601 text, as JSON clients send it
    # (pandas Timestamps are datetimes).
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy / pandas scalars
        return _clean(value.item())
    return value


def build_payload(records: Sequence[dict], shape: str = "data", method: str = "predict") -> dict:
    """The JSON body for `records` in the given request shape."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    rows = [{k: _clean(v) for k, v in r.items()} for r in records]
    if shape == "inputs":
        return {"Inputs": {"data": rows}, "GlobalParameters": {"method": method}}
    if shape == "input_data":
        columns = list(rows[0]) if rows else []
        body: dict[str, Any] = {
            "input_data": {
                "columns": columns,
                "index": list(range(len(rows))),
                "data": [[r.get(c) for c in columns] for r in rows],
            }
        }
        if method != "predict":
            body["params"] = {"method": method}
        return body
    body = {"data": rows}
    if method != "predict":
        body["method"] = method
    return body


def parse_predictions(body: Any, shape: str) -> list:
    """Pull the prediction list out of a response body of the given shape."""
    if isinstance(body, str):  # classic ACI services double-encode their JSON
        try:
            body = json.loads(body)
        except ValueError:
            raise ScoringError(f"unexpected response body: {body[:200]!r}") from None
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("Results", "result", "predictions"):
            if key in body:
                return body[key]
        if "message" in body or "error" in body:
            raise ScoringError(str(body.get("message") or body.get("error")))
    raise ScoringError(f"unexpected response for shape {shape!r}: {str(body)[:200]}")


def _error_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason or "no message"
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if key in body:
                return str(body[key])
    return str(body)[:500]


def score(
    uri: str,
    key: str | None,
    records: Sequence[dict],
    shape: str = "data",
    method: str = "predict",
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> ScoreResponse:
    """POST records to a scoring URI; raise `ScoringError` with the server's message on 4xx/5xx."""
    payload = build_payload(records, shape, method)
    headers = _headers(key)
    sender = session or requests
    start = time.perf_counter()
    try:
        resp = sender.post(uri, data=json.dumps(payload), headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ScoringError(f"could not reach {uri}: {type(exc).__name__}") from None
    latency_ms = (time.perf_counter() - start) * 1000
    if resp.status_code >= 400:
        raise ScoringError(_error_message(resp), resp.status_code, resp.text)
    try:
        body = resp.json()
    except ValueError:
        raise ScoringError(f"response is not JSON: {resp.text[:200]!r}", resp.status_code) from None
    values = parse_predictions(body, shape)
    classes = None
    if resp.headers.get("x-ms-classes"):
        try:
            classes = json.loads(resp.headers["x-ms-classes"])
        except ValueError:
            classes = None
    proba = method == "predict_proba"
    predictions = values
    if proba and classes:
        predictions = [classes[max(range(len(p)), key=p.__getitem__)] for p in values]
    return ScoreResponse(
        predictions=None if proba and not classes else predictions,
        probabilities=values if proba else None,
        status_code=resp.status_code,
        latency_ms=latency_ms,
        raw=body,
        classes=classes,
    )


@dataclass
class RawResponse:
    """An endpoint's answer to a body sent as is: status, parsed JSON (None if not JSON), text."""

    status_code: int
    body: Any
    text: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code < 400


def _headers(key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def post_json(uri: str, key: str | None, body: Any, timeout: float = 30.0) -> RawResponse:
    """POST any JSON body unchanged and return the answer, errors included (for raw requests).

    Raises `ScoringError` only when the endpoint cannot be reached.
    """
    start = time.perf_counter()
    try:
        resp = requests.post(uri, data=json.dumps(body), headers=_headers(key), timeout=timeout)
    except requests.RequestException as exc:
        raise ScoringError(f"could not reach {uri}: {type(exc).__name__}") from None
    latency_ms = (time.perf_counter() - start) * 1000
    try:
        parsed = resp.json()
    except ValueError:
        parsed = None
    return RawResponse(resp.status_code, parsed, resp.text, latency_ms)


def fetch_swagger(swagger_uri: str, key: str | None = None, timeout: float = 2.0) -> dict | None:
    """The endpoint's Swagger/OpenAPI document, or None when it does not answer with one."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        resp = requests.get(swagger_uri, headers=headers, timeout=timeout)
        document = resp.json() if resp.status_code < 400 else None
    except (requests.RequestException, ValueError):
        return None
    return document if isinstance(document, dict) else None


def score_frame(
    uri: str,
    key: str | None,
    frame: pd.DataFrame,
    chunk_size: int = 1000,
    shape: str = "data",
    method: str = "predict",
    timeout: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
    skip_refused: int = 0,
) -> pd.DataFrame:
    """Score a DataFrame in chunks; returns it with a `prediction` column (+ `proba_<class>`).

    ``skip_refused``: up to this many rows the endpoint refuses by number (a 400 naming "Row
    N") are set aside and the rest of their request sent again; the result then has an `error`
    column, empty for the rows scored. More, or any other failure, stops the batch.
    """

    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    total = len(frame)
    preds: list = []
    probas: list = []
    classes = None
    errors: dict[int, str] = {}  # position in the frame -> why the endpoint refused it
    done = 0
    with requests.Session() as session:
        for start in range(0, total, chunk_size):
            positions = list(range(start, min(start + chunk_size, total)))
            while True:
                chunk = frame.iloc[positions]
                try:
                    resp = score(
                        uri, key, chunk.to_dict("records"), shape, method, timeout, session
                    )
                    break
                except ScoringError as exc:
                    row = _refused_row(exc, len(positions))
                    if row is None or len(errors) >= skip_refused:
                        kept = [i for i in range(start) if i not in errors]
                        scored = _with_predictions(frame.iloc[kept], preds, probas, classes)
                        raise BatchScoringError(exc, scored, start, len(positions)) from exc
                    at = positions.pop(row)
                    errors[at] = _REQUEST_ROW.sub(f"Row {at + 1:,}", exc.message, count=1)
                    if not positions:
                        resp = None
                        break
            if resp is not None:
                if resp.predictions is not None:
                    preds.extend(resp.predictions)
                if resp.probabilities is not None:
                    probas.extend(resp.probabilities)
                    classes = resp.classes or classes
            done = min(total, start + chunk_size)
            if progress is not None:
                progress(done, total)
    if not errors:
        return _with_predictions(frame, preds, probas, classes)
    # The refused rows keep their place, with no prediction and the endpoint's reason.
    kept = [i for i in range(total) if i not in errors]
    scored = _with_predictions(frame.iloc[kept], preds, probas, classes)
    out = frame.copy()
    for column in scored.columns.difference(frame.columns, sort=False):
        values = [None] * total
        for i, value in zip(kept, scored[column].tolist(), strict=True):
            values[i] = value
        out[column] = values
    out["error"] = [errors.get(i, "") for i in range(total)]
    return out


def _refused_row(exc: ScoringError, rows: int) -> int | None:
    """The request's row a 400 names ("Row 3, column 'age': …"), if it names one of them."""
    if exc.status_code != 400:
        return None
    found = _REQUEST_ROW.search(exc.message)
    if found is None or not 0 <= int(found.group(1)) < rows:
        return None
    return int(found.group(1))


def _with_predictions(frame: Any, preds: list, probas: list, classes: list | None) -> Any:
    """`frame` with a `prediction` column (+ `proba_<class>`) from the answers."""
    import pandas as pd

    out = frame.copy()
    if preds and len(preds) == len(out):
        out["prediction"] = preds
    if probas:
        names = classes or list(range(len(probas[0])))
        for j, c in enumerate(names):
            out[f"proba_{c}"] = [p[j] for p in probas]
    return pd.DataFrame(out)


def number_help(feature: dict) -> str | None:
    """What a number field of the Score form says: the training range, and the numbers the
    upload read as missing (which the model reads as no value too)."""
    lo, hi = feature.get("min"), feature.get("max")
    parts = [f"training range {lo} … {hi}"] if lo is not None else []
    blanks = feature.get("missing_values") or []
    if blanks:
        shown = ", ".join(f"{v:g}" for v in blanks)
        parts.append(f"{shown} {'is' if len(blanks) == 1 else 'are'} read as no value")
    return "; ".join(parts) or None


def decimals_format(value: float, least: int = 2, most: int = 6) -> str:
    """A number field's format that shows `value` as written (92.893, not 92.89)."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return f"%.{least}f"
    written = len(text.split(".")[1].rstrip("0"))
    return f"%.{min(most, max(least, written))}f"


def prediction_text(value: Any) -> str:
    """A prediction as people read it: a predicted amount with thousands separators and its
    cents (40,604.12, not 40604.118273), a small one to four significant digits; labels as
    they are."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def date_help(fmt: str | None) -> str:
    """What a date field of the Score form takes: ISO 8601, and the upload's own format if any."""
    iso = "ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T13:45:00"
    if not fmt:
        return iso
    try:
        sample = datetime(2024, 5, 31, 13, 45).strftime(fmt)
    except ValueError:
        return iso
    return f"{iso}; or as the training file wrote it, e.g. {sample}"


def curl_snippet(
    uri: str, records: Sequence[dict], shape: str = "data", method: str = "predict"
) -> str:
    """A ready-to-copy curl command; the key comes from `$SCORING_KEY`, exported beforehand."""
    body = json.dumps(build_payload(records, shape, method), indent=2)
    body = body.replace("'", "'\\''")
    # No placeholder assignment in the snippet: pasted after `export SCORING_KEY=...` it would
    # overwrite the real key. Unset, the shell stops with this message instead of sending none.
    return (
        f"curl -sS -X POST '{uri}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        '  -H "Authorization: Bearer ${SCORING_KEY:?export an endpoint key first}" \\\n'
        f"  -d '{body}'"
    )


def python_snippet(
    uri: str, records: Sequence[dict], shape: str = "data", method: str = "predict"
) -> str:
    """A ready-to-copy Python `requests` script; the key comes from the environment."""
    payload = pprint.pformat(build_payload(records, shape, method), sort_dicts=False, width=88)
    return (
        "import os\n\n"
        "import requests\n\n"
        f"scoring_uri = {uri!r}\n"
        'key = os.environ["SCORING_KEY"]  # your endpoint key\n\n'
        f"payload = {payload}\n\n"
        "headers = {\n"
        '    "Content-Type": "application/json",\n'
        '    "Authorization": f"Bearer {key}",\n'
        "}\n"
        "resp = requests.post(scoring_uri, json=payload, headers=headers, timeout=30)\n"
        "resp.raise_for_status()\n"
        "print(resp.json())\n"
    )
