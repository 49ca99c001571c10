"""Free TCP ports for test servers (the supervisor's own helper, one copy)."""

from lib.local.supervisor import free_port

__all__ = ["free_port"]
