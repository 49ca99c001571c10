"""Schedules as APScheduler triggers (cron with crontab day numbering, or an anchored recurrence).

Shared by both backends: the local agent fires them; both show the next fire time with them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from lib.pipeline_rules import cron_fields
from lib.workspace import Schedule

_UNITS = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}


def anchor(schedule: Schedule) -> datetime:
    """The first slot of a recurrence: its start, else one interval after its creation, moved
    to the `at_time` if one is set.

    Recurrences are anchored to a stored instant, never to "now", so a restarted agent keeps
    the same slots.
    """
    zone = ZoneInfo(schedule.time_zone)
    base = (schedule.start or schedule.created or datetime.now(UTC)).astimezone(zone)
    if not schedule.at_time:
        # Without a start the first run is one interval after creation, not at once.
        step = timedelta(**{_UNITS[schedule.frequency]: schedule.interval})
        return base if schedule.start else base + step
    hour, minute = (int(x) for x in schedule.at_time.split(":"))
    if schedule.frequency == "hour":
        slot, step = base.replace(minute=minute, second=0, microsecond=0), timedelta(hours=1)
    else:
        slot = base.replace(hour=hour, minute=minute, second=0, microsecond=0)
        step = timedelta(days=1)
    return slot if slot >= base else slot + step


def build_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a time schedule (not of a data trigger)."""
    if schedule.kind == "cron":
        return CronTrigger(
            timezone=schedule.time_zone,
            start_date=schedule.start,
            end_date=schedule.end,
            **cron_fields(schedule.cron),
        )
    if schedule.kind != "recurrence":
        raise ValueError(f"a {schedule.kind} schedule has no time trigger")
    return IntervalTrigger(
        **{_UNITS[schedule.frequency]: schedule.interval},
        start_date=anchor(schedule),
        end_date=schedule.end,
        timezone=schedule.time_zone,
    )


def next_fire(schedule: Schedule, now: datetime | None = None) -> datetime | None:
    """When the schedule fires next after `now` (None for data triggers and ended schedules)."""
    if schedule.kind == "data" or not schedule.enabled:
        return None
    now = now or datetime.now(UTC)
    return build_trigger(schedule).get_next_fire_time(None, now)
