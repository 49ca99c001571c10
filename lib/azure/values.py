"""SDK values as plain Python: enum members as their wire strings, service times as aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def wire_text(value: Any) -> str:
    """Enum members of the SDK (ProvisioningState.SUCCEEDED) as their wire strings; None as ''."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from the service's ISO 8601 text or a datetime (naive means UTC)."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def created_at(entity: Any) -> datetime:
    """When the service created an asset (its `creation_context`), else now."""
    return parse_time(getattr(entity.creation_context, "created_at", None)) or datetime.now(UTC)
