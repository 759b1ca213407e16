"""Load a share of a topic's followers into the suppression list in one statement: for the suppressed
fan-out test and `manage.py load_suppressions` (bench_fanout with suppressions loaded)."""

from __future__ import annotations

from django.db import connection

# Their contact point on the channel; push has none per recipient, so the entry names the recipient.
_ADDRESS = {"email": "r.email", "sms": "r.phone"}

_LOAD = """
INSERT INTO receipts_suppression (channel, address, recipient_id, reason, source, detail, created_at,
                                  lifted_by, lift_note)
SELECT %(channel)s, {address}, r.id, 'manual', 'load_suppressions', '', now(), '', ''
FROM audience_follow f JOIN audience_topic t ON t.id = f.topic_id AND t.slug = %(topic)s
JOIN audience_recipient r ON r.id = f.recipient_id
WHERE f.recipient_id %% %(every)s = 0
ON CONFLICT (channel, address, recipient_id) WHERE lifted_at IS NULL DO NOTHING
"""


def suppress_share(topic: str, channel: str, every: int = 10) -> int:
    """Suppress every `every`-th follower (recipient id divisible by it) on the channel; returns rows added."""
    address = _ADDRESS.get(channel, "'recipient:' || r.external_id")
    with connection.cursor() as cursor:
        cursor.execute(_LOAD.format(address=address), {"channel": channel, "topic": topic, "every": every})
        return cursor.rowcount


def remove_loaded(channel: str) -> int:
    """Delete what suppress_share loaded (test and benchmark data only: real suppressions are lifted, never deleted)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM receipts_suppression WHERE channel = %s AND source = 'load_suppressions'",
                       [channel])
        return cursor.rowcount
