"""A bookmarked page renders as navigating to it does, even as the first request after a start."""

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import start_dashboard

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_deep_link_is_the_first_request_after_a_start(new_page, tmp_path) -> None:
    """The app's grouped navigation and wide layout, and no asset fetched from another host."""
    server, _ = start_dashboard(tmp_path)
    page = new_page
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc or urlparse(r.url).scheme))
    try:
        page.goto(server.url + "/datasets")
        expect(page.get_by_role("heading", name="Datasets")).to_be_visible()
        nav = page.get_by_test_id("stSidebarNav")
        # The app's own navigation: section headers and titles, not the pages/ file names.
        expect(nav).to_contain_text("Train")
        expect(nav).to_contain_text("Benchmarks")
        expect(nav.get_by_text(re.compile(r"^app$"))).to_have_count(0)
        expect(page.get_by_text("Workspace", exact=False).first).to_be_visible()
        expect(page).to_have_url(re.compile(r"/datasets$"))
        # layout="wide" comes from app.py's page config.
        width = page.get_by_test_id("stMainBlockContainer").bounding_box()["width"]
        assert width > 900, width

        page.goto(server.url + "/benchmarks")
        expect(page.get_by_role("heading", name="Benchmarks")).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Operate")
    finally:
        server.stop(grace_s=20)
    assert hosts <= {f"127.0.0.1:{server.port}", "data"}, hosts
