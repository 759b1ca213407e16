"""Record a batch of receipts in a constant number of statements: find the deliveries by provider message
id (the partial index delivery_message_id_idx), insert the first event of each state, suppress the
addresses the receipts condemn. A receipt naming no delivery is counted and ignored."""

from __future__ import annotations

from collections import Counter

from django.db import connection, transaction
from django.utils import timezone

from apps.core.pgarray import int_array, text_array
from apps.delivery.models import CHANNEL_BY_CODE, RECIPIENT_BITS
from apps.providers.receipts import Receipt

from . import metrics, suppressions

RECEIPT_CHANNELS = ("email", "sms")  # the channels delivery_message_id_idx covers

_FIND = """
SELECT d.id, d.recipient_id, d.provider_message_id, r.email, r.phone
FROM delivery_delivery d LEFT JOIN audience_recipient r ON r.id = d.recipient_id
WHERE d.provider_message_id = ANY(%s::text[]) AND d.channel IN ('email', 'sms')
"""
_INSERT = """
INSERT INTO receipts_deliveryevent (delivery_id, state, at, provider, detail)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
ON CONFLICT (delivery_id, state) DO NOTHING
RETURNING delivery_id, state, provider
"""


def _forms(message_id: str) -> list[str]:
    """SMTP's Message-ID is recorded with its angle brackets; some ESPs report it without."""
    bare = message_id.strip().strip("<>")
    return list(dict.fromkeys([message_id, bare, f"<{bare}>"]))


def record(receipts: list[Receipt]) -> Counter:
    """Returns the new events by state."""
    if not receipts:
        return Counter()
    wanted = {form for receipt in receipts for form in _forms(receipt.message_id)}
    with connection.cursor() as cursor:
        cursor.execute(_FIND, [text_array(sorted(wanted))])
        found: dict[str, list[tuple]] = {}
        for delivery_id, recipient_id, message_id, email, phone in cursor.fetchall():
            found.setdefault(message_id, []).append((delivery_id, recipient_id, email or "", phone or ""))
    now = timezone.now()
    rows: list[tuple] = []
    condemned: dict[str, list[suppressions.Entry]] = {}
    for receipt in receipts:
        deliveries = next((found[f] for f in _forms(receipt.message_id) if f in found), None)
        if deliveries is None:
            metrics.UNKNOWN.labels(receipt.channel, receipt.provider).inc()
            continue
        for delivery_id, recipient_id, email, phone in deliveries:
            rows.append((delivery_id, str(receipt.state), (receipt.at or now).isoformat(), receipt.provider,
                         receipt.detail))
            if receipt.suppress is not None:
                channel = CHANNEL_BY_CODE[(delivery_id >> RECIPIENT_BITS) & 7]
                address = {"email": email, "sms": phone}.get(channel) or receipt.address
                condemned.setdefault(channel, []).append(suppressions.Entry(
                    address, recipient_id, receipt.suppress, receipt.provider, receipt.detail))
    if not rows:
        return Counter()
    with transaction.atomic(), connection.cursor() as cursor:
        columns = [text_array([row[i] for row in rows]) for i in (1, 2, 3, 4)]
        cursor.execute(_INSERT, [int_array(row[0] for row in rows), *columns])
        added = cursor.fetchall()
        for channel, entries in condemned.items():
            suppressions.suppress(channel, entries)
    counts = Counter()
    for delivery_id, state, provider in added:
        channel = CHANNEL_BY_CODE[(delivery_id >> RECIPIENT_BITS) & 7]
        metrics.RECEIPTS.labels(channel, provider, state).inc()
        counts[state] += 1
    return counts
