"""notify(): the one way in. Records the notification, then publishes its event."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from . import attachment_hooks, idempotency
from .events import publish_notification_event
from .models import ApiKey, EventSource, Notification, NotificationStatus, Source
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
    notification, created = record(request, source, api_key, event_source)
    if publish and (created or notification.status == NotificationStatus.ACCEPTED):
        publish_notification_event(notification.pk, notification.category.priority)
    return notification


def record(request: NotificationRequest, source: str, api_key: ApiKey | None = None,
           event_source: EventSource | None = None) -> tuple[Notification, bool]:
    attachment_hooks.check_allowed(request.attachments, api_key, event_source)
    key = request.idempotency_key
    scope = idempotency.scope_of(source, api_key, event_source)
    print_ = idempotency.fingerprint(request)
    held = idempotency.holder(scope, key) if key else None
    if held is not None and not idempotency.is_expired(held):
        idempotency.check_same(held, request, print_)
        return held, False
    try:
        with transaction.atomic():
            if held is not None:
                idempotency.release_expired(held)
            notification = Notification.objects.create(
                idempotency_key=key, idempotency_scope=scope if key else "", idempotency_fingerprint=print_,
                idempotency_expires_at=idempotency.expiry_for(scope) if key else None, api_key=api_key,
                event_source=event_source,
                category=request.category, channels=request.channels, audience=request.audience,
                title=request.title, body=request.body, context=request.context, source=source,
                template_id=request.template_id,
            )
            attachment_hooks.attach(notification.pk, request.attachments)
    except IntegrityError:  # a concurrent request with the same key won
        winner = idempotency.holder(scope, key)
        if winner is None:
            raise
        idempotency.check_same(winner, request, print_)
        return winner, False
    return notification, True
