"""Local telemetry service: the endpoints' request and trace tables and the Logs page's aggregates."""

from __future__ import annotations

import pandas as pd

from lib.appinsights import TelemetryQuery
from lib.local.telemetry import TelemetryReader, build_query, read_requests, read_traces


class LocalTelemetry(TelemetryReader):
    """`TelemetryService` over the workspace's telemetry database."""

    def requests(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        return read_requests(self.db_path, query)

    def traces(self, query: TelemetryQuery | None = None) -> pd.DataFrame:
        return read_traces(self.db_path, query)

    def query_text(self, kind: str, query: TelemetryQuery | None = None) -> str:
        """The SQL behind a table, parameters shown inline (for display only)."""
        sql, params = build_query(kind, query)
        for value in params:
            sql = sql.replace("?", repr(value), 1)
        return sql
