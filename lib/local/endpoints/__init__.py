"""Local endpoints: server processes on 127.0.0.1, their deployments, traffic and history.

By concern: `service` (`LocalEndpoints`, the EndpointService: lifecycle, traffic, rollback,
reconcile), `deployments` (the deployments and history tables, the routing table a server
loads), `servers` (a server's command line and control socket, seen from the dashboard).
"""

from lib.local import supervisor
from lib.local.endpoints.service import (
    LOCK_WAIT_S,
    STOP_GRACE_S,
    TELEMETRY_FILE,
    LocalEndpoints,
    describe_split,
)

__all__ = [
    "LOCK_WAIT_S",
    "STOP_GRACE_S",
    "TELEMETRY_FILE",
    "LocalEndpoints",
    "describe_split",
    "supervisor",
]
