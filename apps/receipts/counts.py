"""What providers reported for one notification: counts by state, per channel, read over the packed
delivery key range (the (delivery_id, state) unique index serves it)."""

from __future__ import annotations

from django.db import connection

from apps.delivery.models import CHANNEL_BY_CODE, RECIPIENT_BITS, Delivery
from apps.providers.receipts import State

# What the status API, the campaign page and the README call receipts.
SHOWN = ("delivered", "bounced", "soft_bounced", "complained", "opened", "clicked", "undelivered")

_BY_CHANNEL = f"""
SELECT (delivery_id >> {RECIPIENT_BITS}) & 7, state, count(*) FROM receipts_deliveryevent
WHERE delivery_id BETWEEN %s AND %s GROUP BY 1, 2
"""


def by_channel(notification_id: int) -> dict[str, dict[str, int]]:
    """{channel: {state: n}} for the channels with any receipt; sms "failed" counts as undelivered."""
    with connection.cursor() as cursor:
        cursor.execute(_BY_CHANNEL, Delivery.key_range(notification_id))
        rows = cursor.fetchall()
    channels: dict[str, dict[str, int]] = {}
    for code, state, count in rows:
        entry = channels.setdefault(CHANNEL_BY_CODE.get(code, "unknown"), dict.fromkeys(SHOWN, 0))
        shown = State.UNDELIVERED.value if state == State.FAILED.value else state
        entry[shown] = entry.get(shown, 0) + count
    return channels


def totals(notification_id: int) -> dict[str, int]:
    total = dict.fromkeys(SHOWN, 0)
    for entry in by_channel(notification_id).values():
        for state, count in entry.items():
            total[state] = total.get(state, 0) + count
    return total
