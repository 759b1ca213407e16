"""When a user's quiet hours end, in their own timezone, across DST changes.

Wall-clock times are resolved in the user's zone on the day they fall: "07:00 Europe/London" is
06:00 UTC in summer and 07:00 UTC in winter. A time that does not exist on a spring-forward day
(01:30 in London when clocks jump from 01:00 to 02:00) is moved on by the gap (02:30), and an
ambiguous one on a fall-back day is its first occurrence (PEP 495, fold=0).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `zone`."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """If `now` (aware) is inside the daily window [start, end) in `zone`, the UTC instant it ends; else None."""
    local_day = now.astimezone(zone).date()
    # The window that could contain now started today or, for a window crossing midnight, yesterday.
    for start_day in (local_day - timedelta(days=1), local_day):
        opens = _local_instant(start_day, start, zone)
        end_day = start_day if end > start else start_day + timedelta(days=1)
        closes = _local_instant(end_day, end, zone)
        if opens <= now < closes:
            return closes
    return None
