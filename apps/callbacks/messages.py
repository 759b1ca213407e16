"""What a completed notification tells its API key's callback endpoints, as stored, signed-later messages.

`notification.completed` carries the counts PostgreSQL records. `delivery.failed` and
`delivery.dead_lettered` name the recipients of each outcome, CALLBACK_BATCH_SIZE to a message (one
request per batch, never one per recipient), read in key order so memory stays flat whatever the
audience. Messages are inserted with ON CONFLICT DO NOTHING under ids made from what they are, so a
notification finalized twice still reports once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.conf import settings
from django.db import connection

from apps.delivery import records
from apps.delivery.models import Delivery, DeliveryStatus, Notification, NotificationStatus

from .models import CallbackEndpoint, CallbackMessage, EventType

OUTCOME_EVENTS = ((EventType.DELIVERY_FAILED, DeliveryStatus.FAILED, "failed"),
                  (EventType.DELIVERY_DEAD_LETTERED, DeliveryStatus.DEAD_LETTERED, "dead_lettered"))
_SHORT = {EventType.NOTIFICATION_COMPLETED: "completed", EventType.DELIVERY_FAILED: "failed",
          EventType.DELIVERY_DEAD_LETTERED: "dead_lettered"}

_RECIPIENTS = """
SELECT d.id, d.recipient_id, coalesce(r.external_id, ''), d.channel, d.reason, d.attempts
FROM delivery_delivery d LEFT JOIN audience_recipient r ON r.id = d.recipient_id
WHERE d.id > %s AND d.id <= %s AND d.status = %s ORDER BY d.id LIMIT %s
"""


def message_id(endpoint_id: int, event_type: str, notification_id: int, part: int = 0) -> str:
    return f"msg_n{notification_id}_e{endpoint_id}_{_SHORT[event_type]}_{part}"


def body(event_type: str, timestamp: str, data: dict) -> str:
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def create_for(notification_id: int) -> Iterator[list[str]]:
    """The ids of the messages a completed notification makes, a batch at a time, once stored."""
    notification = Notification.objects.filter(pk=notification_id).values(
        "api_key_id", "status", "targeted", "idempotency_key", "completed_at", "category_id").first()
    if notification is None or notification["api_key_id"] is None or \
            notification["status"] != NotificationStatus.COMPLETED:
        return
    # An endpoint hears of the notifications completed since it was registered.
    endpoints = list(CallbackEndpoint.objects.filter(api_key_id=notification["api_key_id"], is_active=True,
                                                     created_at__lte=notification["completed_at"]))
    if not endpoints:
        return
    counts = records.count_by_status(notification_id)
    at = notification["completed_at"].isoformat()
    completed = body(EventType.NOTIFICATION_COMPLETED, at, {
        "notification_id": notification_id, "status": "completed", "category": notification["category_id"],
        "idempotency_key": notification["idempotency_key"], "targeted": notification["targeted"] or 0, **counts,
        "completed_at": at})
    yield _store([CallbackMessage(id=message_id(e.pk, EventType.NOTIFICATION_COMPLETED, notification_id),
                                  endpoint=e, event_type=EventType.NOTIFICATION_COMPLETED,
                                  notification_id=notification_id, payload=completed)
                  for e in endpoints if e.wants(EventType.NOTIFICATION_COMPLETED)])
    for event_type, status, name in OUTCOME_EVENTS:
        subscribers = [e for e in endpoints if e.wants(event_type)]
        if not subscribers or not counts[name]:
            continue
        for part, recipients in enumerate(_recipients(notification_id, status, settings.CALLBACK_BATCH_SIZE)):
            payload = body(event_type, at, {"notification_id": notification_id, "part": part,
                                            "recipients": recipients})
            yield _store([CallbackMessage(id=message_id(e.pk, event_type, notification_id, part), endpoint=e,
                                          event_type=event_type, notification_id=notification_id, payload=payload)
                          for e in subscribers])


def _store(messages: list[CallbackMessage]) -> list[str]:
    CallbackMessage.objects.bulk_create(messages, ignore_conflicts=True)
    return [m.id for m in messages]


def _recipients(notification_id: int, status: int, size: int) -> Iterator[list[dict]]:
    low, high = Delivery.key_range(notification_id)
    after = low - 1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_RECIPIENTS, [after, high, status, size])
            rows = cursor.fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield [{"recipient_id": r[1], "external_id": r[2], "channel": r[3], "reason": r[4], "attempts": r[5]}
               for r in rows]
