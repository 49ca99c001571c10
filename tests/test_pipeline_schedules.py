"""Schedules as triggers: anchored recurrences, crontab weekdays, time zones, end dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from lib.pipeline_schedules import anchor, next_fire
from lib.workspace import Schedule

CREATED = datetime(2026, 3, 2, 10, 17, tzinfo=UTC)  # a Monday


def schedule(**kw: object) -> Schedule:
    base = {"name": "s", "pipeline": "p", "trigger": "", "enabled": True, "created": CREATED}
    return Schedule(**{**base, **kw})  # type: ignore[arg-type]


def test_recurrence_slots_are_anchored_to_the_schedule_not_to_now() -> None:
    every5 = schedule(frequency="minute", interval=5)
    assert next_fire(every5, CREATED) == CREATED + timedelta(minutes=5)  # not at once
    assert next_fire(every5, CREATED + timedelta(minutes=7)) == CREATED + timedelta(minutes=10)
    assert next_fire(every5, CREATED + timedelta(days=3, seconds=1)) == CREATED + timedelta(
        days=3, minutes=5
    )


def test_at_time_in_the_schedules_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    daily = schedule(frequency="day", at_time="06:30", time_zone="Europe/Paris")
    assert anchor(daily) == datetime(2026, 3, 3, 6, 30, tzinfo=paris)  # 10:17 UTC is past 06:30
    fire = next_fire(daily, CREATED)
    assert fire.astimezone(paris).replace(tzinfo=None) == datetime(2026, 3, 3, 6, 30)
    hourly = schedule(frequency="hour", interval=2, at_time="00:45")
    assert next_fire(hourly, CREATED) == datetime(2026, 3, 2, 10, 45, tzinfo=UTC)


def test_cron_weekdays_and_end_date() -> None:
    weekdays = schedule(kind="cron", cron="0 6 * * 1-5")
    friday = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    assert next_fire(weekdays, friday) == datetime(2026, 3, 9, 6, 0, tzinfo=UTC)  # Monday
    ended = schedule(frequency="minute", end=CREATED + timedelta(minutes=3))
    assert next_fire(ended, CREATED + timedelta(minutes=4)) is None
    assert next_fire(schedule(enabled=False), CREATED) is None
    assert next_fire(schedule(kind="data", dataset="bank"), CREATED) is None
