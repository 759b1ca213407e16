"""notify(): the one way in. Records the notification, then publishes its event."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from .events import publish_notification_event
from .models import Notification, NotificationStatus, Source
from .requests import NotificationRequest, parse_request


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
) -> Notification:
    """Notify an audience. The same idempotency_key always returns the same notification.

    Raises RequestError (with the field) for bad input, BrokerUnavailable if the event could not
    be published; the notification is then recorded and a retry with the same key publishes it.
    """
    request = parse_request(
        {"category": category, "audience": audience, "channels": channels, "title": title, "body": body,
         "context": context or {}, **({"template_id": template_id} if template_id else {})},
        idempotency_key=idempotency_key,
    )
    return submit(request, source)


def submit(request: NotificationRequest, source: str, publish: bool = True) -> Notification:
    notification, created = record(request, source)
    if publish and (created or notification.status == NotificationStatus.ACCEPTED):
        publish_notification_event(notification.pk, notification.category.priority)
    return notification


def record(request: NotificationRequest, source: str) -> tuple[Notification, bool]:
    if request.idempotency_key:
        existing = Notification.objects.filter(idempotency_key=request.idempotency_key).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                idempotency_key=request.idempotency_key, category=request.category, channels=request.channels,
                audience=request.audience, title=request.title, body=request.body, context=request.context,
                source=source, template_id=request.template_id,
            )
    except IntegrityError:  # a concurrent request with the same key won
        return Notification.objects.get(idempotency_key=request.idempotency_key), False
    return notification, True
