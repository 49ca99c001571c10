"""Audit log page: actions taken on other pages are listed with who, what and when."""

from __future__ import annotations

from lib.access import os_user
from lib.audit import AuditLog
from lib.settings import load_settings
from tests.pages.conftest import button, open_page

CSV = b"age;job;y\n30;admin;no\n45;technician;yes\n"


def test_a_deletion_on_the_datasets_page_is_in_the_audit_log(local_workspace) -> None:
    at = open_page("audit.py")
    assert any("Nothing has been recorded" in i.value for i in at.info)
    local_workspace.datasets.upload("people", CSV, "people.csv", "staff list")
    at = open_page("datasets.py")
    at.checkbox(key="datasets_delete_confirm_people").check().run()
    button(at, "Delete dataset").click().run()
    assert not at.exception, at.exception
    at.switch_page("pages/audit.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert (row["who"], row["action"], row["target"], row["outcome"]) == (
        os_user(),
        "dataset.delete",
        "people",
        "ok",
    )
    assert not at.error  # the chain is intact


def test_a_tampered_log_is_flagged(local_workspace) -> None:
    log = AuditLog(load_settings().home, actor=lambda: "alice")
    log.record("endpoint.keys.reveal", "churn")
    log.record("endpoint.delete", "churn")
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text(lines[0].replace("alice", "bob") + lines[1])
    at = open_page("audit.py")
    assert any("line 2 does not follow" in e.value for e in at.error)
