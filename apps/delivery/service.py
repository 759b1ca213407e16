"""The delivery pipeline's service: notify(), the one way in (records the notification, then publishes its
event), and what the apps above it may do with a notification on its way. They import this module only."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from apps.core import queues

from . import attachment_hooks, audience_kinds, control, idempotency, progress
from .models import ApiKey, Delivery, DeliveryStatus, EventSource, Notification, NotificationStatus, Source
from .publisher import publish_notification_event
from .requests import NotificationRequest, parse_request
from .signals import notification_completed  # noqa: F401 (sent by the finalizer; part of this API)


def notify(
    *,
    category: str,
    audience: dict,
    channels: list[str],
    title: str = "",
    body: str = "",
    context: dict | None = None,
    idempotency_key: str | None = None,
    source: str = Source.PYTHON,
    template_id: int | None = None,
    attachments: list[int] | None = None,
) -> Notification:
    """Notify an audience. The same idempotency_key always returns the same notification.

    Raises RequestError (with the field) for bad input, BrokerUnavailable if the event could not
    be published; the notification is then recorded and a retry with the same key publishes it.
    """
    request = parse_request(
        {"category": category, "audience": audience, "channels": channels, "title": title, "body": body,
         "context": context or {}, **({"template_id": template_id} if template_id else {}),
         **({"attachments": attachments} if attachments else {})},
        idempotency_key=idempotency_key,
    )
    return submit(request, source)


def submit(request: NotificationRequest, source: str, publish: bool = True,
           api_key: ApiKey | None = None, event_source: EventSource | None = None) -> Notification:
    """Record the request (idempotently, within the scope of api_key, else of event_source, else of source)
    and publish it.

    Raises IdempotencyConflict when a held key was first used for a different request."""
    return submit_reporting(request, source, publish, api_key, event_source)[0]


def submit_reporting(request: NotificationRequest, source: str, publish: bool = True, api_key: ApiKey | None = None,
                     event_source: EventSource | None = None) -> tuple[Notification, bool]:
    """submit(), and whether this call created the notification (False: the key's holder answered)."""
    notification, created = record(request, source, api_key, event_source)
    if publish and (created or notification.status == NotificationStatus.ACCEPTED):
        publish_notification_event(notification.pk, notification.category.priority)
    return notification, created


def record(request: NotificationRequest, source: str, api_key: ApiKey | None = None,
           event_source: EventSource | None = None) -> tuple[Notification, bool]:
    attachment_hooks.check_allowed(request.attachments, api_key, event_source)
    key = request.idempotency_key
    scope = idempotency.scope_of(source, api_key, event_source)
    print_ = idempotency.fingerprint(request)
    fields = {"idempotency_key": key, "idempotency_scope": scope if key else "", "idempotency_fingerprint": print_,
              "idempotency_expires_at": idempotency.expiry_for(scope) if key else None, "api_key": api_key,
              "event_source": event_source, "category": request.category, "channels": request.channels,
              "audience": request.audience, "title": request.title, "body": request.body,
              "context": request.context, "source": source, "template_id": request.template_id}
    if not request.attachments:
        # The common case in one statement (an INSERT, no transaction of its own); only a key that is taken
        # sends it the long way, which reads the key's holder.
        try:
            if connection.in_atomic_block:  # the caller's transaction survives a conflict
                with transaction.atomic():
                    return Notification.objects.create(**fields), True
            return Notification.objects.create(**fields), True
        except IntegrityError:
            if not key:
                raise
    held = idempotency.holder(scope, key) if key else None
    if held is not None and not idempotency.is_expired(held):
        idempotency.check_same(held, request, print_)
        return held, False
    try:
        with transaction.atomic():
            if held is not None:
                idempotency.release_expired(held)
            notification = Notification.objects.create(**fields)
            attachment_hooks.attach(notification.pk, request.attachments)
    except IntegrityError:  # a concurrent request with the same key won
        winner = idempotency.holder(scope, key)
        if winner is None:
            raise
        idempotency.check_same(winner, request, print_)
        return winner, False
    return notification, True


# The rest of the pipeline's public face, for the apps above it (campaigns): steer a notification that is
# on its way, and read what it came to.
CANCELLED = control.CANCELLED
TERMINAL_COUNTS = progress.TERMINAL
register_audience_kind = audience_kinds.register
AudienceKind = audience_kinds.AudienceKind


def pause(notification_id: int) -> None:
    """Senders park this notification's batches (in Redis, with PostgreSQL recording none of them sent)."""
    control.pause(notification_id)


def release(notification_id: int, new_state: str = "") -> int:
    """Resume (or, with CANCELLED, cancel) a notification: its parked batches go back to the senders, which
    skip them as cancelled in that case. Returns how many batches were handed back."""
    from .tasks import enqueue_batch

    handed = 0
    for batch in control.release(notification_id, new_state):
        enqueue_batch(batch, 0, queues.send_queue(batch.priority))
        handed += 1
    return handed


def live_counts(notification_id: int) -> dict[str, float]:
    """The live counters (Redis; the finalizer recounts from PostgreSQL): sent, failed, skipped, targeted..."""
    return progress.read(notification_id)


_OUTCOMES = ("SELECT channel, status, reason, count(*) FROM delivery_delivery WHERE id BETWEEN %s AND %s"
             " GROUP BY 1, 2, 3")


def outcome_counts(notification_id: int) -> list[tuple[str, str, str, int]]:
    """(channel, outcome, reason, recipients) from PostgreSQL, the record; outcome is sent, failed, skipped or
    dead_lettered."""
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES, Delivery.key_range(notification_id))
        rows = cursor.fetchall()
    return [(channel, DeliveryStatus(status).name.lower(), reason, count) for channel, status, reason, count in rows]
