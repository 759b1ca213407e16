"""One delivery attempt of a callback message, and when the next one is due.

An attempt first claims the message in PostgreSQL (a lease, so two copies of its task never post at
once), posts the stored body signed with the endpoint's secret (apps/providers/standard_webhooks.py),
logs the attempt and decides: delivered; again later (no answer, 408, 429, 5xx) after an exponential
backoff with jitter, no sooner than the receiver's Retry-After; or failed for good (any other 4xx, a
refused URL, or CALLBACK_MAX_ATTEMPTS used up).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.providers import standard_webhooks
from apps.providers.base import retry_after_seconds

from .models import CallbackAttempt, CallbackMessage, MessageStatus

log = logging.getLogger(__name__)

_CLAIM = """
UPDATE callbacks_callbackmessage SET leased_until = now() + make_interval(secs => %s), attempts = attempts + 1
WHERE id = %s AND status = 'pending' AND (leased_until IS NULL OR leased_until < now())
  AND (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '1 second')
RETURNING attempts
"""


def backoff_seconds(attempt: int, retry_after: str | None = None) -> float:
    """CALLBACK_RETRY_BASE_SECONDS x 3^(attempt-1), at most CALLBACK_RETRY_MAX_SECONDS, +-20 % jitter."""
    delay = min(settings.CALLBACK_RETRY_BASE_SECONDS * 3 ** (attempt - 1), settings.CALLBACK_RETRY_MAX_SECONDS)
    delay *= random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries, not a secret
    return max(delay, retry_after_seconds(retry_after) or 0.0)


def attempt(message_id: str) -> float | None:
    """Try the message once if it is due and nobody else is trying it; seconds until the next attempt,
    or None when there is nothing more to do now (delivered, failed, not due, or claimed elsewhere)."""
    timeout = settings.CALLBACK_TIMEOUT_SECONDS
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [timeout + 30, message_id])
        claimed = cursor.fetchone()
    if claimed is None:
        return None
    number = claimed[0]
    message = CallbackMessage.objects.select_related("endpoint").get(pk=message_id)
    endpoint = message.endpoint
    if not endpoint.is_active:
        _close(message, number, MessageStatus.FAILED, "endpoint deactivated")
        return None
    answer = standard_webhooks.post(endpoint.url, endpoint.secret, message.id, message.payload.encode(), timeout)
    CallbackAttempt.objects.create(message=message, number=number, status_code=answer.status,
                                   latency_ms=answer.latency_ms, error=answer.error[:300])
    if answer.delivered:
        _close(message, number, MessageStatus.DELIVERED, "")
        return None
    if not answer.worth_retrying or number >= settings.CALLBACK_MAX_ATTEMPTS:
        log.warning("callback %s to endpoint %s failed for good after %d attempt(s): %s", message.id,
                    endpoint.pk, number, answer.error[:120])
        _close(message, number, MessageStatus.FAILED, answer.error)
        return None
    delay = backoff_seconds(number, answer.retry_after)
    CallbackMessage.objects.filter(pk=message.id).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay), leased_until=None, last_error=answer.error[:300])
    return delay


def _close(message: CallbackMessage, number: int, status: str, error: str) -> None:
    CallbackMessage.objects.filter(pk=message.id).update(
        status=status, leased_until=None, next_attempt_at=None, last_error=error[:300],
        delivered_at=timezone.now() if status == MessageStatus.DELIVERED else None)
