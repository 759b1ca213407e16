"""Write per-recipient delivery state in bulk. The packed key makes every write idempotent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import IntegrityError, connection

from apps.core.pgarray import int_array, text_array

from .models import CHANNEL_CODES, NOTIFICATION_SHIFT, RECIPIENT_BITS, Delivery, DeliveryStatus, check_key_range

STATUS_FIELD = {
    DeliveryStatus.SENT: "sent", DeliveryStatus.FAILED: "failed", DeliveryStatus.SKIPPED: "skipped",
    DeliveryStatus.DEAD_LETTERED: "dead_lettered",
}

# For a batch that cannot have rows yet (its first claim): no conflict check and nothing returned,
# a third less of PostgreSQL's CPU. Should a row exist after all, the statement fails whole and
# _INSERT runs instead.
_INSERT_NEW = """
INSERT INTO delivery_delivery
    (id, notification_id, recipient_id, channel, status, reason, provider_message_id, attempts, updated_at)
SELECT (%(n)s::bigint << %(shift)s) | (%(code)s::bigint << %(bits)s) | r, %(n)s, r, %(channel)s, s, e,
       p, %(attempts)s, now()
FROM unnest(%(r)s::bigint[], %(s)s::smallint[], %(e)s::text[], %(p)s::text[]) AS t(r, s, e, p)
"""

_INSERT = _INSERT_NEW + """ON CONFLICT (id) DO NOTHING
RETURNING status
"""

# A dead-letter replay: a dead-lettered row may take its new outcome; every other row stays as it is.
_REPLACE_DEAD_LETTERED = _INSERT.replace("ON CONFLICT (id) DO NOTHING", f"""ON CONFLICT (id) DO UPDATE
    SET status = EXCLUDED.status, reason = EXCLUDED.reason, provider_message_id = EXCLUDED.provider_message_id,
        attempts = delivery_delivery.attempts + EXCLUDED.attempts, updated_at = now()
    WHERE delivery_delivery.status = {int(DeliveryStatus.DEAD_LETTERED)}""")


@dataclass
class Outcomes:
    """Final outcomes of one batch, one per recipient, written in one statement."""

    recipient_ids: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    provider_ids: list[str] = field(default_factory=list)

    def add(self, recipient_id: int, status: int, reason: str = "", provider_id: str = "") -> None:
        self.recipient_ids.append(recipient_id)
        self.statuses.append(int(status))
        self.reasons.append(reason[:300])
        self.provider_ids.append(provider_id[:200])

    def add_sent(self, provider_ids: dict[int, str]) -> None:
        """Many recipients sent at once (recipient id -> provider message id)."""
        self.recipient_ids += provider_ids
        self.statuses += [int(DeliveryStatus.SENT)] * len(provider_ids)
        self.reasons += [""] * len(provider_ids)
        self.provider_ids += [provider_id[:200] for provider_id in provider_ids.values()]

    def __len__(self) -> int:
        return len(self.recipient_ids)


def write(notification_id: int, channel: str, outcomes: Outcomes, attempts: int = 1,
          replace_dead_lettered: bool = False, first_write: bool = False) -> Counter:
    """Insert the outcomes; returns counts by progress field of the rows that were new (or replaced).

    `first_write`: nothing of these recipients can be recorded yet (a batch's first claim), so the
    cheaper statement is tried first.
    """
    if not outcomes:
        return Counter()
    check_key_range(notification_id, max(outcomes.recipient_ids))
    params = {
        "n": notification_id, "code": CHANNEL_CODES[channel], "channel": channel, "attempts": attempts,
        "shift": NOTIFICATION_SHIFT, "bits": RECIPIENT_BITS,
        "r": int_array(outcomes.recipient_ids), "s": int_array(outcomes.statuses),
        "e": text_array(outcomes.reasons), "p": text_array(outcomes.provider_ids),
    }
    with connection.cursor() as cursor:
        if first_write and not replace_dead_lettered and not connection.in_atomic_block:
            try:
                cursor.execute(_INSERT_NEW, params)
                return Counter({STATUS_FIELD[status]: n for status, n in Counter(outcomes.statuses).items()})
            except IntegrityError:
                pass  # recorded before after all (Redis lost the claim): keep what is there
        cursor.execute(_REPLACE_DEAD_LETTERED if replace_dead_lettered else _INSERT, params)
        return Counter(STATUS_FIELD[status] for (status,) in cursor.fetchall())


def already_recorded(notification_id: int, channel: str, recipient_ids: list[int],
                     except_dead_lettered: bool = False) -> dict[int, int]:
    """The recipients with a final state already (with except_dead_lettered: other than dead-lettered),
    and that state."""
    keys = [Delivery.key(notification_id, channel, r) for r in recipient_ids]
    query = "SELECT recipient_id, status FROM delivery_delivery WHERE id = ANY(%s::bigint[])"
    if except_dead_lettered:
        query += f" AND status <> {int(DeliveryStatus.DEAD_LETTERED)}"
    with connection.cursor() as cursor:
        cursor.execute(query, [int_array(keys)])
        return dict(cursor.fetchall())


def count_by_status(notification_id: int) -> dict[str, int]:
    low, high = Delivery.key_range(notification_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM delivery_delivery WHERE id BETWEEN %s AND %s GROUP BY status",
                       [low, high])
        counts = {name: 0 for name in STATUS_FIELD.values()}
        for status, count in cursor.fetchall():
            counts[STATUS_FIELD[status]] = count
        return counts
