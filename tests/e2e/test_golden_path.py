import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def upload(page, path) -> None:  # noqa: ANN001
    """Choose a file and wait until the browser has sent it (submitting earlier loses it)."""
    page.locator("input[type=file]").set_input_files(str(path))
    expect(page.get_by_test_id("stFileChip")).to_be_visible()
    expect(page.get_by_test_id("stFileChipIconSpinner")).to_have_count(0)


def test_upload_bank_marketing_and_see_profile(page, dashboard, bank_csv) -> None:
    page.goto(dashboard)
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Datasets")
    expect(page.get_by_text("Local", exact=False).first).to_be_visible()
    page.get_by_test_id("stSidebarNav").get_by_text("Datasets").click()
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible()

    upload(page, bank_csv)
    page.get_by_role("button", name="Register dataset").click()
    expect(page.get_by_text(re.compile(r"32,950 rows × 21 columns"))).to_be_visible()
    expect(page.get_by_text("bankmarketing_train v1").first).to_be_visible()

    page.get_by_role("tab", name="Profile").click()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()

    # The same file again: the page names the version it matches and asks; confirmed, it is v2.
    upload(page, bank_csv)
    page.get_by_role("button", name="Register dataset").click()
    identical = re.compile(r"byte-identical to bankmarketing_train v1")
    expect(page.get_by_text(identical)).to_be_visible()
    page.get_by_role("button", name="Register as a new version").click()
    expect(page.get_by_text("bankmarketing_train v2").first).to_be_visible()


def test_train_deploy_and_score_in_the_browser(page, dashboard, bank_csv, tmp_path) -> None:
    """AutoML run → live progress → leaderboard → register and deploy → score from the form."""
    import pandas as pd

    sample = tmp_path / "bank_small.csv"
    pd.read_csv(bank_csv).sample(3000, random_state=3).to_csv(sample, index=False)
    page.goto(dashboard)
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Datasets").click()
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible()
    if not page.get_by_role("button", name="Register dataset").is_visible():
        page.get_by_text("Add a dataset").click()  # collapsed once datasets exist
    upload(page, sample)
    page.get_by_role("button", name="Register dataset").click()
    expect(page.get_by_text(re.compile(r"3,000 rows × 21 columns"))).to_be_visible()

    nav.get_by_text("AutoML").click()
    # The newest dataset is preselected.
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("bank_small")
    budget = page.get_by_role("spinbutton", name="Time budget (s)")
    budget.fill("10")
    budget.press("Enter")
    page.get_by_role("button", name="Submit AutoML run").click()
    expect(page.get_by_text(re.compile(r"Submitted \*?\*?automl-"))).to_be_visible()
    # The live view refreshes by itself until the run completes, then the leaderboard appears.
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible(timeout=180_000)
    expect(page.get_by_text(re.compile(r"— .*Completed")).first).to_be_visible()
    expect(page.get_by_test_id("stMetricLabel").filter(has_text="Best algorithm")).to_be_visible()

    page.get_by_role("button", name="Register and deploy").click()
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    expect(page.get_by_text(re.compile(r"bank-small-y — Succeeded"))).to_be_visible(timeout=90_000)

    nav.get_by_text("Score").click()
    page.get_by_role("button", name="Score", exact=True).click()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(re.compile(r"^(yes|no)$"))

    # The retrain pipeline on the same data, started from its button, runs to the end.
    nav.get_by_text("Pipelines").click()
    expect(page.get_by_role("heading", name="Pipelines")).to_be_visible()
    page.get_by_role("combobox", name="Dataset", exact=True).click()
    page.get_by_role("option", name="bank_small").click()
    budget = page.get_by_role("spinbutton", name="Time budget (s)")
    budget.fill("10")
    budget.press("Enter")
    page.get_by_role("button", name="Save pipeline").click()
    expect(page.get_by_text(re.compile(r"retrain v1 · bank_small")).first).to_be_visible()
    page.get_by_role("tab", name="Run now").click()
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text(re.compile(r"Started \*?\*?\S+"))).to_be_visible()
    page.get_by_role("tab", name="Runs").click()
    # The runs view follows the run by itself until it ends.
    done = re.compile(r"· (Completed|Failed|Canceled) · trigger")
    expect(page.get_by_text(done).first).to_be_visible(timeout=300_000)
    expect(page.get_by_text(re.compile(r"· Completed · trigger")).first).to_be_visible()
