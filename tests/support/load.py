"""Continuous load for tests: N threads scoring an endpoint until stopped, every answer counted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Answer:
    status: int | None  # None: the request failed without an HTTP answer
    deployment: str | None
    error: str = ""


@dataclass
class Load:
    """Scores `url` with `body` from `threads` keep-alive clients while the `with` block runs."""

    url: str
    body: Any
    key: Callable[[], str] | str
    threads: int = 8
    timeout: float = 30.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            key = self.key() if callable(self.key) else self.key
            try:
                r = session.post(
                    self.url,
                    json=self.body,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=self.timeout,
                )
                answer = Answer(r.status_code, r.headers.get("azureml-model-deployment"))
            except requests.RequestException as exc:
                answer = Answer(None, None, type(exc).__name__ + ": " + str(exc)[:200])
            with self._lock:
                self.answers.append(answer)
        session.close()

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_for_more(self, n: int, timeout: float = 60.0) -> None:
        """Block until `n` more answers arrived (so a switch happens under real load)."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{n} more answers took over {timeout:g} s ({self.count()} answers so far)"
                )
            time.sleep(0.01)

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]

    def deployments(self, since: int = 0) -> Counter:
        with self._lock:
            return Counter(a.deployment for a in self.answers[since:] if a.status == 200)
