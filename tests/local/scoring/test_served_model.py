"""The serving path chosen at start-up: fast path only when it agrees with pyfunc.predict."""

from __future__ import annotations

import numpy as np

from lib.local.scoring.served_model import prepare_model
from tests.local.scoring_models import records


def test_fast_path_is_used_and_matches_pyfunc(fast_pyfunc, models):
    served = prepare_model(fast_pyfunc)
    assert served.path == "fast", served.check_message
    assert "agrees" in served.check_message
    rows = records(models.frame)
    expected = list(fast_pyfunc.predict(models.frame))
    assert served.predict([dict(r) for r in rows]) == expected
    assert served.classes == ["no", "yes"]
    assert [c.name for c in served.columns] == ["age", "balance", "job", "contact"]
    assert served.columns[2].categories == ("admin.", "blue-collar", "technician", "services")


def test_disagreeing_fast_path_falls_back_to_pyfunc(broken_pyfunc, models, caplog):
    served = prepare_model(broken_pyfunc)
    assert served.path == "pyfunc"
    assert "disagrees" in served.check_message
    assert "disagrees" in caplog.text
    rows = records(models.frame, 50)
    assert served.predict(rows) == list(broken_pyfunc.predict(models.frame.head(50)))
    assert "yes" in served.predict(rows)  # the broken fast path only ever says "no"


def test_plain_sklearn_model_uses_pyfunc_with_probabilities(sklearn_pyfunc, models):
    served = prepare_model(sklearn_pyfunc)
    assert served.path == "pyfunc" and "no fast path" in served.check_message
    assert served.has_proba and served.classes == ["no", "yes"]
    assert not served.allows_null_integers
    proba = served.predict_proba(records(models.frame, 5))
    raw = sklearn_pyfunc.get_raw_model().predict_proba(models.frame.head(5))
    np.testing.assert_allclose(proba, raw)
