"""What may go now: quiet hours, frequency caps, and the expiry of sends deferred before.

Recipients held back are deferred, not dropped: their ids go to notify.deferred with a not-before
time (the end of their quiet hours, or the next cap window), and come back through the deferred
bridge as a batch of their own. One that would only come back after the notification's expiry is
skipped at once with the reason (`throttled` or `quiet_hours`), as is one whose deferral outlived it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection

from apps.audience.validators import zone_of
from apps.core import clock, metrics
from apps.core.pgarray import int_array
from apps.preferences.quiet_hours import quiet_until
from apps.streaming.topics import DEFERRED, deferred_partition, topic_name

from . import progress, publisher, records, throttle
from .batch_message import BatchMessage
from .models import DeliveryStatus

log = logging.getLogger(__name__)

THROTTLED = "throttled"
QUIET_HOURS = "quiet_hours"

_QUIET_WINDOWS = """
SELECT q.recipient_id, r.timezone, q.start, q."end" FROM preferences_quiethours q
JOIN audience_recipient r ON r.id = q.recipient_id WHERE q.recipient_id = ANY($1)
"""


@dataclass(frozen=True)
class BatchRef:
    """Where a batch came from, to name the deferred batches cut from it."""

    batch_id: str
    priority: str
    attempt: int = 1
    deferred: str = ""  # why this batch was deferred before, if it was


@dataclass(frozen=True)
class Rules:
    """The parts of a notification that decide what may go now."""

    notification_id: int
    category: str
    urgent: bool  # transactional or high priority: quiet hours do not apply
    daily_cap: int | None
    expires_at: float  # epoch seconds


def admit(rules: Rules, channel: str, ref: BatchRef, recipient_ids: list[int],
          outcomes: records.Outcomes) -> list[int]:
    """The recipients that may be sent to now; the others are deferred or, past expiry, skipped."""
    now = clock.now()
    if ref.deferred and now >= rules.expires_at:
        for recipient_id in recipient_ids:
            outcomes.add(recipient_id, DeliveryStatus.SKIPPED, ref.deferred)
        return []
    later: dict[tuple[str, float], list[int]] = defaultdict(list)
    if not rules.urgent:
        quiet = _quiet_until(recipient_ids, now)
        for recipient_id, until in quiet.items():
            later[(QUIET_HOURS, until)].append(recipient_id)
        if quiet:
            recipient_ids = [r for r in recipient_ids if r not in quiet]
    if rules.daily_cap is not None and recipient_ids:
        try:
            refused = throttle.admit(rules.category, rules.daily_cap, rules.notification_id, recipient_ids, now)
            retry_at = throttle.window_end(now)
        except throttle.StoreUnavailable:
            refused, retry_at = set(recipient_ids), now + settings.THROTTLE_OUTAGE_DEFER_SECONDS
        if refused:
            later[(THROTTLED, retry_at)] += [r for r in recipient_ids if r in refused]
            recipient_ids = [r for r in recipient_ids if r not in refused]
    if later:
        _defer(rules, channel, ref, later, outcomes)
    return recipient_ids


def _quiet_until(recipient_ids: list[int], now: float) -> dict[int, float]:
    """Recipients inside their quiet hours now, and when those end (epoch seconds).

    A prepared statement: this runs for every batch of a blast, and planning it cost more (~1 ms)
    than running it (~0.1 ms).
    """
    with connection.cursor() as cursor:
        if getattr(connection, "_quiet_windows_prepared_on", None) is not connection.connection:
            cursor.execute(f"PREPARE notify_quiet_windows(bigint[]) AS {_QUIET_WINDOWS}")
            connection._quiet_windows_prepared_on = connection.connection
        cursor.execute("EXECUTE notify_quiet_windows(%s::bigint[])", [int_array(recipient_ids)])
        rows = cursor.fetchall()
    if not rows:
        return {}
    moment = datetime.fromtimestamp(now, UTC)
    quiet = {}
    for recipient_id, timezone, start, end in rows:
        until = quiet_until(moment, zone_of(timezone), start, end)
        if until is not None:
            quiet[recipient_id] = until.timestamp()
    return quiet


def _defer(rules: Rules, channel: str, ref: BatchRef, later: dict[tuple[str, float], list[int]],
           outcomes: records.Outcomes) -> None:
    counts: dict[str, int] = defaultdict(int)
    for (reason, due), recipient_ids in later.items():
        if due >= rules.expires_at:
            for recipient_id in recipient_ids:
                outcomes.add(recipient_id, DeliveryStatus.SKIPPED, reason)
            continue
        # Deterministic id: a re-run of this batch after a crash names the same deferred batch.
        batch = BatchMessage(rules.notification_id, channel, ref.priority, f"{ref.batch_id}/{reason[0]}{int(due)}",
                             recipient_ids, attempt=ref.attempt, deferred=reason)
        publisher.publish_due(topic_name(DEFERRED), batch, due, partition=deferred_partition(due))
        counts[reason] += len(recipient_ids)
    publisher.producer().flush(10)
    for reason, n in counts.items():
        metrics.count(channel, rules.category, "none", reason, n)
    if counts:
        progress.add(rules.notification_id, **counts)
