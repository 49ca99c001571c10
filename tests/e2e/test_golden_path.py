import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_upload_bank_marketing_and_see_profile(page, dashboard, bank_csv) -> None:
    page.goto(dashboard)
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Datasets")
    expect(page.get_by_text("Local", exact=False).first).to_be_visible()
    page.get_by_test_id("stSidebarNav").get_by_text("Datasets").click()
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible()

    page.locator("input[type=file]").set_input_files(str(bank_csv))
    page.get_by_role("button", name="Register dataset").click()
    expect(page.get_by_text(re.compile(r"32,950 rows × 21 columns"))).to_be_visible()
    expect(page.get_by_text("bankmarketing_train v1").first).to_be_visible()

    page.get_by_role("tab", name="Profile").click()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()

    # The same file again becomes v2; the list shows two versions.
    page.locator("input[type=file]").set_input_files(str(bank_csv))
    page.get_by_role("button", name="Register dataset").click()
    expect(page.get_by_text("bankmarketing_train v2").first).to_be_visible()
