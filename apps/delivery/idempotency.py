"""Idempotency keys as Stripe and Knock have them: scoped, remembered for a while, tied to one request.

A key belongs to a scope: the API key that sent it, the event source whose raw Kafka event brought it, this service's
own code (notify(), the signal and manage.py notify share one scope, so a signal and a call with one
key are one notification), or the internal campaign namespace, which only campaign launches use. The same key in two
scopes names two notifications. A key is held for NOTIFY_IDEMPOTENCY_TTL_SECONDS (24 h); campaign
occurrences are held for ever. A request with a held key and the same body gets the same
notification; with another body it is refused, naming what differs.

Uniqueness is a partial unique index on (scope, key) over the rows still holding their key. An expired
key is released (released_at set) in the same transaction as the insert that reuses it, so two
requests racing for an expired key still make one notification: the loser's insert meets the index,
rolls back, and answers with the winner.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.json_checks import RequestError

from . import attachment_hooks
from .models import ApiKey, EventSource, Notification, Source
from .requests import NotificationRequest

CAMPAIGN_SCOPE = "internal:campaign"
IN_PROCESS_SCOPE = "in-process"
IN_PROCESS_SOURCES = (Source.PYTHON, Source.SIGNAL, Source.COMMAND)
COMPARED = ("category", "channels", "audience", "title", "body", "context", "template_id", "attachments")


class IdempotencyConflict(RequestError):
    """The key was first used for a different request (a 422 in the API, a dead letter on Kafka)."""

    def __init__(self, key: str, differing: list[str]) -> None:
        super().__init__("idempotency_key", f"key {key!r} was already used for a different request"
                                            f" ({', '.join(differing)} differ)")
        self.differing = differing


def scope_of(source: str, api_key: ApiKey | None = None, event_source: EventSource | None = None) -> str:
    if api_key is not None:
        return f"api-key:{api_key.pk}"
    if event_source is not None:
        return f"source:{event_source.pk}"
    if source == Source.CAMPAIGN:
        return CAMPAIGN_SCOPE
    return IN_PROCESS_SCOPE if source in IN_PROCESS_SOURCES else str(source)


def expiry_for(scope: str):  # noqa: ANN201
    if scope == CAMPAIGN_SCOPE:
        return None
    return timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def _canonical(request: NotificationRequest) -> dict:
    canonical = {"category": request.category.slug, "channels": sorted(request.channels), "audience": request.audience,
                 "title": request.title, "body": request.body, "context": request.context,
                 "template_id": request.template_id}
    if request.attachments:  # only when there are some: the fingerprints of requests without any are unchanged
        canonical["attachments"] = request.attachments
    return canonical


def fingerprint(request: NotificationRequest) -> str:
    text = json.dumps(_canonical(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def holder(scope: str, key: str) -> Notification | None:
    """The notification holding this key in this scope now (expired or not)."""
    return (Notification.objects.select_related("category")
            .filter(idempotency_scope=scope, idempotency_key=key, idempotency_released_at__isnull=True).first())


def is_expired(notification: Notification) -> bool:
    expires = notification.idempotency_expires_at
    return expires is not None and expires <= timezone.now()


def release_expired(notification: Notification) -> None:
    """Free an expired key for reuse; call inside the transaction that inserts its new holder."""
    Notification.objects.filter(pk=notification.pk, idempotency_released_at__isnull=True,
                                idempotency_expires_at__lte=timezone.now()).update(
        idempotency_released_at=timezone.now())


def check_same(notification: Notification, request: NotificationRequest, print_: str) -> None:
    """Raise IdempotencyConflict when the key's first request was another one. Campaign occurrences and
    rows from before fingerprints were kept are not compared."""
    if notification.idempotency_scope == CAMPAIGN_SCOPE or not notification.idempotency_fingerprint:
        return
    if notification.idempotency_fingerprint == print_:
        return
    stored = {"category": notification.category.slug, "channels": sorted(notification.channels),
              "audience": notification.audience, "title": notification.title, "body": notification.body,
              "context": notification.context, "template_id": notification.template_id}
    stored["attachments"] = attachment_hooks.ids_of(notification.pk) or None
    new = _canonical(request)
    differing = [name for name in COMPARED if stored.get(name) != new.get(name)] or ["the request"]
    raise IdempotencyConflict(request.idempotency_key or "", differing)
