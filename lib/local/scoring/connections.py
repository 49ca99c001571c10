"""Connections under abuse: a deadline to receive each request, a cap on open connections.

uvicorn arms no timer on a new connection (its keep-alive timeout starts only after a response),
so a client that connects and sends nothing, or a few bytes of a request head, holds a socket
and a file descriptor for good: enough of them exhaust the process's descriptors and nobody can
connect. `guarded_protocol` makes uvicorn's h11 protocol

- close a connection that has not delivered its whole request (head and body) within
  `receipt_timeout` seconds of connecting, or of its previous answer on a kept-alive connection;
- keep at most `max_connections` open: past the cap it closes the oldest connections that are
  waiting for a request (those that never sent one first), never one whose request is being
  processed, so a flood of idle connections cannot lock a real client out.

uvicorn's own `limit_concurrency` is not used: it answers 503 to *new* requests once the cap is
reached, which is what such a flood wants.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import socket
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("opsdeck.scoring")

DEFAULT_RECEIPT_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 2048
# Descriptors kept for everything that is not a client connection (model files, SQLite, logs).
RESERVED_FDS = 128
# Scope key set on a request whose body did not arrive in time.
RECEIPT_EXPIRED = "opsdeck.receipt_expired"
_TIMEOUT_BODY = b'{"message": "Request body not received in time"}'
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(_TIMEOUT_BODY) + _TIMEOUT_BODY
)
# At most one summary line per interval: a flood must not flood the log too.
REPORT_INTERVAL_S = 60.0


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's soft descriptor limit towards the hard limit; return the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(requested: int, fd_limit: int, backlog: int = 0) -> int:
    """The cap actually used: what was asked for, within the descriptors this process may open.

    asyncio accepts up to `backlog` connections in one go before any of them is seen (and the
    cap enforced), so that many descriptors stay free above the cap.
    """
    return max(64, min(requested, fd_limit - RESERVED_FDS - backlog))


class _Counters:
    def __init__(self) -> None:
        self.expired = 0
        self.evicted = 0
        self._reported = (0, 0)
        self._last = 0.0

    def report(self) -> None:
        now = time.monotonic()
        current = (self.expired, self.evicted)
        if current != self._reported and now - self._last >= REPORT_INTERVAL_S:
            log.warning(
                "connections closed: %d that sent no complete request in time, %d over the cap "
                "(totals since start)",
                *current,
            )
            self._reported, self._last = current, now


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-receipt deadline and a connection cap."""

    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    counters: _Counters = _Counters()
    # Connections this class closed that the loop has not yet reported lost: still in
    # `self.connections`, but no longer counted against the cap.
    closing: set[GuardedH11Protocol] = set()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        no_delay(transport)
        self._opened = time.monotonic()
        self._answered = False
        self._receipt: asyncio.TimerHandle | None = None
        self._arm_receipt()
        if len(self.connections) - len(self.closing) > self.max_connections:
            self._evict_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_receipt()
        self.closing.discard(self)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._answered = True
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_receipt()  # the next request on a kept-alive connection

    def waiting_for_request(self) -> bool:
        """True while no request is being processed: nothing, or part of a head, received."""
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def _arm_receipt(self) -> None:
        self._cancel_receipt()
        self._receipt = self.loop.call_later(self.receipt_timeout, self._receipt_expired)

    def _cancel_receipt(self) -> None:
        if getattr(self, "_receipt", None) is not None:
            self._receipt.cancel()  # type: ignore[union-attr]
            self._receipt = None

    def _receipt_expired(self) -> None:
        self._receipt = None
        if self.transport.is_closing():
            return
        # A request whose head and body arrived is being answered: never cut it off.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            cycle = self.cycle
            if self.conn.their_state == h11.SEND_BODY and cycle is not None:
                # The head arrived, the body did not: the request is logged as the server's
                # timeout (408), not the client's hang-up, and a client still reading is told.
                cycle.scope[RECEIPT_EXPIRED] = True
                if not cycle.response_started:
                    self.transport.write(REQUEST_TIMEOUT_RESPONSE)
            self.counters.expired += 1
            self.closing.add(self)
            self.transport.close()
            self.counters.report()

    def _evict_idle(self) -> None:
        # Down to 90 % of the cap in one pass, so a flood costs one scan per many connections.
        excess = len(self.connections) - len(self.closing) - int(self.max_connections * 0.9)
        idle = [
            p
            for p in self.connections
            if p is not self
            and isinstance(p, GuardedH11Protocol)
            and not p.transport.is_closing()
            and p.waiting_for_request()
        ]
        idle.sort(key=lambda p: (p._answered, p._opened))
        for victim in idle[:excess]:
            self.closing.add(victim)
            victim.transport.close()
            self.counters.evicted += 1
        self.counters.report()


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Nagle's algorithm off: a small answer is sent at once, not held for the client's delayed
    ACK (~40 ms a request on a kept-alive connection). asyncio does this only for sockets made
    with IPPROTO_TCP; uvicorn's own listening sockets are made with protocol 0."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # closed already


def add_guard_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of a server's connection guard."""
    parser.add_argument(
        "--receipt-timeout",
        type=float,
        default=DEFAULT_RECEIPT_TIMEOUT_S,
        help="seconds a connection has to deliver a whole request before it is closed",
    )
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)


def guarded_protocol(
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_S,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> type[GuardedH11Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""
    attrs: dict[str, Any] = {
        "receipt_timeout": float(receipt_timeout),
        "max_connections": int(max_connections),
        "counters": _Counters(),
        "closing": set(),
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attrs)
