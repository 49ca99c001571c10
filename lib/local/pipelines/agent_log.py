"""The agent's log (`pipelines/agent.log`), kept to a bounded size and rate.

The supervisor appends the agent's stdout and stderr to its log. Records go to stderr through
the endpoint servers' rotating handler (copy to `agent.log.1` and truncate past a size), and a
filter lets through at most a few records of the same kind per minute, counting the rest: a
client flood that makes the agent log one line per connection costs a few lines, not megabytes.
"""

from __future__ import annotations

import logging
import time

from lib.local.scoring.server_log import DEFAULT_MAX_BYTES, RotatingStderrHandler

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REPEATS_PER_WINDOW = 5
WINDOW_S = 60.0


class RepeatFilter(logging.Filter):
    """At most `per_window` records per (logger, message template) in each `window_s` seconds."""

    def __init__(self, per_window: int = REPEATS_PER_WINDOW, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.per_window = per_window
        self.window_s = window_s
        # (logger, template) -> (window start, records seen in it, records dropped before it)
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        start, seen, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window_s:
            start, seen = now, 0
        seen += 1
        if seen > self.per_window:
            self._seen[key] = (start, seen, dropped + 1)
            return False
        self._seen[key] = (start, seen, 0)
        if dropped:
            try:
                text = record.getMessage()
            except (TypeError, ValueError):
                text = str(record.msg)
            record.msg, record.args = f"{text} [{dropped} more like this were not logged]", None
        if len(self._seen) > 10_000:
            self._seen = {key: self._seen[key]}
        return True


def setup_logging(max_bytes: int = DEFAULT_MAX_BYTES) -> RotatingStderrHandler:
    """Route every record (uvicorn's and asyncio's too) through the bounded stderr handler."""
    handler = RotatingStderrHandler(max_bytes)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
