"""Reconcile: the recorded state of each endpoint brought in line with its server processes.

On every look: a restart in progress is promoted once the new server serves (or given up when
it died); Creating becomes Succeeded when the server answers, Failed if it died; a dead server
makes the endpoint Unhealthy; a server left on another routing table than the recorded one is
given the recorded one again; a draining server that exited is forgotten. Once per dashboard
process, server processes of the workspace that no endpoint records are stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import requests

from lib.local import supervisor
from lib.local.endpoints import servers
from lib.local.endpoints.deployments import routing_table
from lib.local.endpoints.servers import recorded
from lib.local.jobs import now_iso
from lib.local.supervisor import ProcessRef

STOP_GRACE_S = 10.0
# In a look at every endpoint, a server that answered with the recorded table is asked again
# after this long (a look at one endpoint always asks): every page lists the endpoints, and one control round trip per endpoint per render adds up (20 endpoints
# on a loaded machine: ~0.5 s a page). Changes made here bump the generation and are checked at
# once; this only delays the repair of a crash between a server's answer and its record.
ROUTING_RECHECK_S = 30.0


class Reconciler:
    """The reconcile half of `LocalEndpoints` (which provides the paths, lock and records)."""

    def reap_orphans(self) -> int:
        """Stop this workspace's server processes that no endpoint records; returns how many."""
        found: dict[str, list[ProcessRef]] = {}
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            try:
                keys, name = cmd[cmd.index("--keys-file") + 1], cmd[cmd.index("--endpoint") + 1]
            except (ValueError, IndexError):
                continue
            ref = supervisor.identify(proc.pid)
            if Path(keys).parent.parent == self.root and ref is not None:
                found.setdefault(name, []).append(ref)
        stopped = 0
        for name, refs in found.items():
            # Under the endpoint's lock: a server being started is recorded before it is seen.
            with self._locked(name, wait=False) as held:
                if not held:
                    continue
                row = (
                    self.store.connect()
                    .execute("SELECT * FROM endpoints WHERE name=?", (name,))
                    .fetchone()
                )
                known = [recorded(row, p) for p in ("", "next_", "draining_")] if row else []
                alive = {r.pid for r in known if r is not None and supervisor.is_alive(r)}
                for ref in refs:
                    if ref.pid not in alive:
                        stopped += supervisor.stop(ref, grace_s=STOP_GRACE_S)
        return stopped

    # --- reconcile -------------------------------------------------------------------------

    def reconcile(self, name: str | None = None) -> None:
        """Bring each endpoint's recorded state in line with its processes (see `_reconcile_one`)."""
        if not self._orphans_reaped:
            # Once per dashboard process: servers an older opsdeck or a crash left unrecorded.
            self._orphans_reaped = True
            self.reap_orphans()
        sql = "SELECT name FROM endpoints" + (" WHERE name=?" if name else "")
        names = [r[0] for r in self.store.connect().execute(sql, (name,) if name else ())]
        for endpoint in names:
            # An endpoint in the middle of an operation is looked at next time.
            with self._locked(endpoint, wait=False) as held:
                if held:
                    self._reconcile_one(endpoint, recheck=name is not None)

    def _update(self, name: str, **values: Any) -> None:
        columns = ", ".join(f"{k}=?" for k in values)
        with self.store.transaction() as tx:
            tx.execute(
                f"UPDATE endpoints SET {columns}, updated=? WHERE name=?",
                (*values.values(), now_iso(), name),
            )

    def _settle_handover(self, name: str, row: Any) -> bool:
        """A restart in progress: promote the new server once it serves; True if still going."""
        nxt = recorded(row, "next_")
        if supervisor.is_alive(nxt):
            answer = servers.status(self.stem(name), nxt)
            if answer is None or not answer.get("serving"):
                return True
            assert nxt is not None
            old = recorded(row)
            self._update(
                name,
                pid=nxt.pid,
                pid_started=nxt.create_time,
                next_pid=None,
                next_pid_started=None,
                draining_pid=old.pid if old else None,
                draining_pid_started=old.create_time if old else None,
                state="Succeeded",
                error=None,
            )
            self.records.set_notes(name, servers.notes(answer))
            return False
        tail = self.logs(name, lines=15)
        alive = supervisor.is_alive(recorded(row))
        self._update(
            name,
            next_pid=None,
            next_pid_started=None,
            state="Succeeded" if alive else "Unhealthy",
            error="The restart failed: the new server exited before it was ready"
            + ("; the previous one keeps serving." if alive else ".")
            + f"\n{tail}",
        )
        return False

    def _reconcile_one(self, name: str, recheck: bool = True) -> None:
        """Creating → Succeeded when healthy, → Failed if the process died; Succeeded → Unhealthy if dead."""
        row = (
            self.store.connect().execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
        )
        if row is None:
            return
        if row["draining_pid"] is not None and not supervisor.is_alive(recorded(row, "draining_")):
            self._update(name, draining_pid=None, draining_pid_started=None)
        if row["next_pid"] is not None and self._settle_handover(name, row):
            return
        row = self._row(name)
        state, error = row["state"], row["error"]
        alive = supervisor.is_alive(recorded(row))
        if row["desired"] == "stopped":
            if alive:  # a stop that crashed half-way
                supervisor.stop(recorded(row), grace_s=STOP_GRACE_S)
            new_state, new_error = "Stopped", None
        elif state == "Creating":
            if not alive and row["pid"] is None:
                new_state = "Failed"
                new_error = "The deploy was interrupted before the server started; deploy again."
            elif not alive:
                tail = self.logs(row["name"], lines=15)
                new_state, new_error = "Failed", f"The server exited during start-up.\n{tail}"
            elif self._healthy(row["port"]):
                new_state, new_error = "Succeeded", None
                answer = servers.status(self.stem(name), recorded(row))
                if answer is not None:
                    self.records.set_notes(name, servers.notes(answer))
            else:
                return
        elif not alive:
            new_state = "Unhealthy"
            new_error = f"The server process (PID {row['pid']}) is not running; restart it."
        elif state == "Unhealthy" and self._healthy(row["port"]):
            new_state, new_error = "Succeeded", None
        else:
            self._check_routing(name, row, recheck)
            return
        if (new_state, new_error) != (state, error):
            self._update(row["name"], state=new_state, error=new_error)

    def _check_routing(self, name: str, row: Any, recheck: bool = True) -> None:
        """A server left on another table than the recorded one (a crash between the server's
        answer and the record) is given the recorded one again. Without `recheck` (a look at
        every endpoint), a server that answered with the recorded table lately is not asked."""
        checked = self._routing_checked
        seen = (row["pid"], int(row["routing_generation"]))
        last = checked.get(name)
        fresh = last is not None and time.monotonic() - last[1] < ROUTING_RECHECK_S
        if not recheck and fresh and last[0] == seen:
            return
        answer = servers.status(self.stem(name), recorded(row))
        if answer is None:
            return
        if int(answer.get("generation", -1)) == int(row["routing_generation"]):
            checked[name] = (seen, time.monotonic())
            return
        ref = recorded(row)
        assert ref is not None
        table = routing_table(self.store, self.records.split(name), int(row["routing_generation"]))
        servers.apply(self.stem(name), ref, table)

    @staticmethod
    def _healthy(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False
