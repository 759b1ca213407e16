"""The suppression list: add addresses in bulk (one statement per call), lift them with an audit, and
resolve an address to the recipients it belongs to, so the dispatcher can skip by recipient id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from apps.core.pgarray import text_array
from apps.providers.receipts import SuppressionReason

from . import metrics
from .models import Suppression

# The contact column an address of each channel is found in (push tokens are suppressed as devices).
CONTACT_COLUMN = {"email": "email", "sms": "phone"}

_INSERT = """
WITH given AS (
    SELECT * FROM unnest(%(a)s::text[], %(r)s::text[], %(why)s::text[], %(src)s::text[], %(d)s::text[])
        AS g(address, recipient, reason, source, detail)
), resolved AS (
    SELECT address, NULLIF(recipient, '')::bigint AS recipient_id, reason, source, detail FROM given
    WHERE recipient <> '' OR %(column)s IS NULL
    {lookup}
)
INSERT INTO receipts_suppression (channel, address, recipient_id, reason, source, detail, created_at,
                                  lifted_by, lift_note)
SELECT DISTINCT ON (address, recipient_id) %(channel)s, address, recipient_id, reason, source, detail, now(), '', ''
FROM resolved
ON CONFLICT (channel, address, recipient_id) WHERE lifted_at IS NULL DO NOTHING
RETURNING reason
"""
# An address reported without its recipient (a STOP reply, an admin's entry) suppresses every recipient
# with that contact point, or, when none has it yet, the address alone.
_LOOKUP = """UNION ALL
    SELECT g.address, r.id, g.reason, g.source, g.detail FROM given g
    LEFT JOIN audience_recipient r ON r.{column} = g.address
    WHERE g.recipient = ''"""


class Entry(NamedTuple):
    address: str
    recipient_id: int | None
    reason: SuppressionReason
    source: str
    detail: str = ""


def suppress(channel: str, entries: Iterable[Entry]) -> int:
    """Add the entries not suppressed already; returns how many rows were added."""
    entries = [e for e in entries if e.address]
    if not entries:
        return 0
    column = CONTACT_COLUMN.get(channel)
    sql = _INSERT.format(lookup=_LOOKUP.format(column=column) if column else "")
    params = {
        "channel": channel, "column": column,
        "a": text_array([e.address[:512] for e in entries]),
        "r": text_array([str(e.recipient_id) if e.recipient_id else "" for e in entries]),
        "why": text_array([str(e.reason) for e in entries]), "src": text_array([e.source[:32] for e in entries]),
        "d": text_array([e.detail[:300] for e in entries]),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        added = [row[0] for row in cursor.fetchall()]
    for reason in set(added):
        metrics.SUPPRESSIONS.labels(channel, reason).inc(added.count(reason))
    return len(added)


def suppress_invalid(sender: object, channel: str, refused: list[tuple[int, str]], **kwargs: object) -> None:
    """apps.delivery.signals.addresses_refused: (recipient id, address) pairs a provider refused as invalid
    (sent only for a batch that has some: one statement then, nothing otherwise)."""
    reason, detail = SuppressionReason.INVALID_ADDRESS, "refused by the provider as invalid"
    suppress(channel, [Entry(address, recipient_id if channel != "push" else None, reason, "send", detail)
                       for recipient_id, address in refused])


def lift(suppressions: Iterable[Suppression], by: str, note: str = "") -> int:
    """Lift (never delete) active suppressions; returns how many were lifted."""
    ids = [s.pk for s in suppressions if s.lifted_at is None]
    with transaction.atomic():
        return Suppression.objects.filter(pk__in=ids, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lifted_by=by[:150], lift_note=note[:300])


def lift_address(channel: str, address: str, reasons: Iterable[SuppressionReason], by: str, note: str = "") -> int:
    """Lift the address's active suppressions of these reasons (a START reply lifts opt-outs, not bounces)."""
    return lift(Suppression.objects.filter(channel=channel, address=address, lifted_at__isnull=True,
                                           reason__in=[str(r) for r in reasons]), by, note)
