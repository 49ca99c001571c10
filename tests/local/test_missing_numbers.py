"""Numbers an upload reads as missing (-999) are missing at the endpoint too, on every path."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import requests

from lib.local import tracking
from lib.local.drift import ensure_baseline, load_baseline
from lib.local.fastpath import RecordEncoder
from lib.local.store import Store
from lib.local.tabular_model import Encoder
from tests.support.populate import trained
from tests.support.waiting import wait_for


def test_the_encoder_reads_the_uploads_missing_numbers_as_no_value() -> None:
    frame = pd.DataFrame({"depth": [1.5, 4.0, np.nan], "site": ["a", "b", "a"]})
    enc = Encoder.from_frame(frame, missing_numbers={"depth": [-999.0, 9999.0]})
    assert enc.feature_spec[0]["missing_values"] == [-999.0, 9999.0]
    assert "missing_values" not in enc.feature_spec[1]
    records = [
        {"depth": -999, "site": "a"},
        {"depth": "-999.0", "site": "b"},
        {"depth": 9999.0, "site": "a"},
        {"depth": -998, "site": "a"},
        {"depth": None, "site": "a"},
    ]
    encoded = enc.encode_records(records)
    assert [math.isnan(v) for v in encoded[:, 0]] == [True, True, True, False, True]
    assert encoded[3, 0] == -998
    np.testing.assert_array_equal(enc.encode_frame(pd.DataFrame(records)), encoded)
    # The compiled path builds its own encoder from the spec.
    np.testing.assert_array_equal(RecordEncoder(enc.feature_spec).encode(records), encoded)
    # Without such numbers an encoder keeps exactly the attributes older models pickled.
    plain = Encoder.from_frame(frame)
    assert "_blanks" not in plain.__dict__ and "missing_values" not in plain.feature_spec[0]


def _stations(n: int, seed: int) -> bytes:
    """Readings where "not measured" (written -999) means rain: a model must learn that."""
    rng = np.random.default_rng(seed)
    humidity = rng.uniform(0, 100, n).round(1)
    unmeasured = rng.random(n) < 0.3
    rain = np.where(unmeasured | (humidity > 80), "yes", "no")
    written = np.where(unmeasured, "-999", humidity.astype(str))
    frame = pd.DataFrame({"humidity": written, "wind": rng.normal(size=n).round(2), "rain": rain})
    return frame.to_csv(index=False).encode()


def test_an_endpoint_reads_minus_999_as_the_upload_did(local_workspace) -> None:
    ws = local_workspace
    ws.datasets.upload(
        "stations", _stations(800, seed=1), "stations.csv", missing_tokens=["", "NA", "-999"]
    )
    assert ws.datasets.missing_numbers("stations", 1) == {"humidity": [-999.0]}
    profile = ws.datasets.profile("stations", 1).set_index("column")
    assert profile.loc["humidity", "missing_pct"] > 20
    job = trained(ws, "stations", "rain", 15)
    ws.models.register(job.id, "stations-model", "-999 is missing")
    assert ws.models.feature_spec("stations-model", 1)[0]["missing_values"] == [-999.0]
    records = [
        {"humidity": -999, "wind": 0.1},
        {"humidity": "-999", "wind": 0.1},
        {"humidity": None, "wind": 0.1},
        {"humidity": 10.0, "wind": 0.1},
        {"humidity": 95.0, "wind": 0.1},
    ]
    mlflow.set_tracking_uri(tracking.tracking_uri(ws.settings.home))
    model = mlflow.pyfunc.load_model("models:/stations-model/1")
    expected = list(model.predict(pd.DataFrame(records)))
    # As a number -999 would sit below every dry reading and say "no".
    assert expected == ["yes", "yes", "yes", "no", "yes"]
    raw = model.unwrap_python_model()
    assert raw.fast_predict(records) == expected
    ws.endpoints.deploy("stations-model", 1, "stations-ep")
    try:
        ep = wait_for(lambda: (e := ws.endpoints.get("stations-ep")).state != "Creating" and e, 90)
        assert ep.state == "Succeeded", ws.endpoints.logs("stations-ep")
        assert "scoring path: compiled" in ws.endpoints.logs("stations-ep")
        resp = requests.post(
            ep.scoring_uri,
            json={"data": records},
            headers={"Authorization": f"Bearer {ws.endpoints.keys('stations-ep')[0]}"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["result"] == expected
        # The endpoint's drift baseline counts a client's -999 as missing, as the model reads it.
        path = ensure_baseline(Store(ws.settings.home), "stations-model", 1)
        humidity = next(p for p in load_baseline(path).profiles if p.name == "humidity")
        assert humidity.blanks == (-999.0,)
    finally:
        ws.endpoints.delete("stations-ep")


def _shop(n: int, seed: int) -> bytes:
    """A German spreadsheet's export: `;`, thousands dots, decimal commas, a survey's "Refused"."""
    rng = np.random.default_rng(seed)

    def german(x: float, digits: int) -> str:
        return f"{x:,.{digits}f}".translate(str.maketrans(",.", ".,"))

    amount = rng.uniform(100, 5000, n).round(2)
    items = rng.integers(1000, 3000, n)
    age = rng.integers(18, 80, n)
    refused = rng.random(n) < 0.2
    returned = np.where(refused | (amount > 3500), "ja", "nein")
    rows = ["Menge;Umsatz;Alter;Retoure"]
    for m, a, g, r, y in zip(items, amount, age, refused, returned, strict=True):
        rows.append(f"{german(m, 0)};{german(a, 2)} €;{'Refused' if r else g};{y}")
    return "\n".join(rows).encode()


def test_an_endpoint_reads_text_as_a_decimal_comma_upload_did(local_workspace) -> None:
    """Raw rows of the training file were 400s: 'expected a number, got "2.937,46 €"', and
    "Refused", a missing-value word the operator added at upload."""
    ws = local_workspace
    ws.datasets.upload("shop", _shop(900, seed=3), "shop.csv", missing_tokens=["", "NA", "Refused"])
    assert ws.datasets.number_reading("shop", 1) == (["Menge", "Umsatz"], {"Alter": ["Refused"]})
    job = trained(ws, "shop", "Retoure", 15)
    ws.models.register(job.id, "shop-model", "decimal commas")
    spec = {f["name"]: f for f in ws.models.feature_spec("shop-model", 1)}
    assert spec["Umsatz"].get("decimal_comma") and spec["Menge"].get("decimal_comma")
    assert spec["Alter"]["missing_words"] == ["Refused"] and "decimal_comma" not in spec["Alter"]
    as_written = [
        {"Menge": "1.514", "Umsatz": "3.937,46 €", "Alter": "Refused"},
        {"Menge": "2.000", "Umsatz": "120,5", "Alter": " refused "},
        {"Menge": "1.200", "Umsatz": "(1.000,00)", "Alter": "40"},
    ]
    as_numbers = [
        {"Menge": 1514.0, "Umsatz": 3937.46, "Alter": None},
        {"Menge": 2000.0, "Umsatz": 120.5, "Alter": None},
        {"Menge": 1200.0, "Umsatz": -1000.0, "Alter": 40.0},
    ]
    mlflow.set_tracking_uri(tracking.tracking_uri(ws.settings.home))
    model = mlflow.pyfunc.load_model("models:/shop-model/1")
    expected = list(model.predict(pd.DataFrame(as_numbers)))
    assert expected[0] == "ja"  # refused, and a large amount
    ws.endpoints.deploy("shop-model", 1, "shop-ep")
    try:
        ep = wait_for(lambda: (e := ws.endpoints.get("shop-ep")).state != "Creating" and e, 90)
        assert ep.state == "Succeeded", ws.endpoints.logs("shop-ep")
        key = ws.endpoints.keys("shop-ep")[0]
        for records in (as_written, as_numbers):
            resp = requests.post(
                ep.scoring_uri,
                json={"data": records},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["result"] == expected
        # a word the upload did not read as missing is still refused
        resp = requests.post(
            ep.scoring_uri,
            json={"data": [{**as_numbers[0], "Alter": "Don't know"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert resp.status_code == 400 and "column 'Alter': expected a number" in resp.text
    finally:
        ws.endpoints.delete("shop-ep")
