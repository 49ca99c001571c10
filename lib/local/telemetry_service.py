"""Local telemetry service: request and trace tables of the endpoints' servers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from lib.local.telemetry import build_requests_query, build_traces_query, read_requests, read_traces


class LocalTelemetry:
    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def requests(
        self,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        return read_requests(self.db_path, endpoint, since, until, limit)

    def traces(
        self,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        return read_traces(self.db_path, endpoint, since, until, limit)

    def query_text(
        self,
        kind: str,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> str:
        """The SQL behind a table, parameters shown inline (for display only)."""
        builder = build_requests_query if kind == "requests" else build_traces_query
        sql, params = builder(endpoint, since, until, limit)
        for value in params:
            sql = sql.replace("?", repr(value), 1)
        return sql
