"""The Kafka-to-Celery bridge: turns consumed messages into Celery tasks.

The consumer loop (apps.streaming.consumer.run_consumer) commits a message's offset only after these
handlers have handed it on, i.e. after every task it stands for is in the Celery broker. Whatever a
handler raises for one message, other than a dependency outage, dead-letters that message with the
exception as the reason (`rejecter`), and the stream moves on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from celery import current_app
from django.conf import settings

from apps.core import clock, json_checks, queues
from apps.core.json_checks import RequestError, is_int
from apps.delivery import progress, publisher
from apps.delivery.allow_lists import NotAllowed, check_allowed
from apps.delivery.batch_message import SIGNATURE_HEADER, BadBatch, BatchMessage, verify
from apps.delivery.dead_letters import dead_letter_message
from apps.delivery.event_sources import source_of_event
from apps.delivery.models import Source
from apps.delivery.requests import parse_request
from apps.delivery.service import submit
from apps.delivery.tasks import dispatch_notification, enqueue_batch
from apps.streaming.consumer import Message, header

log = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 48 * 3600  # retries back off for minutes and deferrals for under a day


class BadMessage(ValueError):
    pass


def handle_events(messages: Iterator[Message]) -> None:
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            notification_id, priority = _notification_from_event(message)
            dispatch_notification.apply_async(args=[notification_id], queue=queues.dispatch_queue(priority),
                                              producer=producer)
            progress.mark(notification_id, "event_handed")


def _notification_from_event(message: Message) -> tuple[int, str]:
    """The notification an event stands for, and its priority (the category's, from the database)."""
    body = message.value() or b""
    if len(body) > settings.API_MAX_BODY_BYTES:  # the same bound as the HTTP API's
        raise BadMessage(f"larger than {settings.API_MAX_BODY_BYTES} bytes")
    data = json_checks.decode(body)
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    event_source = source_of_event(data, body, header(message, SIGNATURE_HEADER))
    if event_source is None:
        return _platform_event(data)
    if not data.get("idempotency_key"):
        raise RequestError("idempotency_key", "required on events from other services")
    request = parse_request(data)
    check_allowed(event_source, request, f"source {event_source.name!r}")
    notification = submit(request, Source.KAFKA, publish=False, event_source=event_source)
    return notification.pk, notification.category.priority


def _platform_event(data: dict) -> tuple[int, str]:
    """{"notification_id": N, "priority": P}, signed: the priority is the one its category had when recorded."""
    from apps.core.channels import Priority

    if "notification_id" not in data or not set(data) <= {"notification_id", "priority"}:
        raise RequestError("notification_id", "the platform's events are {notification_id, priority}")
    if not is_int(data["notification_id"]):
        raise RequestError("notification_id", "an integer id")
    priority = data.get("priority", Priority.NORMAL)
    if priority not in Priority.values:
        raise RequestError("priority", f"one of {Priority.values}")
    return data["notification_id"], priority


def handle_batches(messages: Iterator[Message]) -> None:
    """One sender task per batch message: the per-task costs are paid once per 5,000 recipients."""
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            batch = _signed_batch(message)
            enqueue_batch(batch, 0, queues.send_queue(batch.priority), producer=producer)


def _signed_batch(message: Message) -> BatchMessage:
    body = message.value() or b""
    verify(body, header(message, SIGNATURE_HEADER))
    return BatchMessage.decode(body)


def retry_due_at(message: Message) -> float:
    """A retry or deferred message's not-before time (epoch seconds). One without a readable one is
    due now, so that its handler sees it and dead-letters it."""
    try:
        return _not_before(message)
    except BadMessage:
        return 0.0


def _not_before(message: Message) -> float:
    try:
        due = int(header(message, publisher.NOT_BEFORE) or "") / 1000.0
    except (ValueError, OverflowError):
        raise BadMessage(f"header {publisher.NOT_BEFORE!r}: epoch milliseconds required") from None
    if not 0 < due < clock.now() + MAX_DELAY_SECONDS:
        raise BadMessage(f"header {publisher.NOT_BEFORE!r}: more than {MAX_DELAY_SECONDS // 3600} h ahead, or not > 0")
    return due


def handle_retries(messages: Iterator[Message]) -> None:
    """Hand due retry batches (notify.retry) to the retry queue; the consumer holds back the rest."""

    def check(batch: BatchMessage) -> None:
        if batch.attempt < 2:
            raise BadMessage("a (attempt) must be at least 2 on a retry")

    _hand_back_when_due(messages, check, time.time(), queues.retry_queue)


def handle_deferred(messages: Iterator[Message]) -> None:
    """Hand deferred batches (notify.deferred) back to their send queue when their window opens."""

    def check(batch: BatchMessage) -> None:
        if not batch.deferred:
            raise BadMessage("d (deferred) must say why: throttled | quiet_hours")

    # Resume: a recipient may have been reached meanwhile by a re-dispatch of the notification.
    _hand_back_when_due(messages, check, clock.now(), queues.send_queue, resume=True)


def _hand_back_when_due(messages: Iterator[Message], check: Callable[[BatchMessage], None], now: float,
                        queue_for: Callable[[str], str], resume: bool = False) -> None:
    """Batches with a not-before header to Celery, each with a countdown to its due time."""
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            batch = _signed_batch(message)
            check(batch)
            due = _not_before(message)
            if resume:
                batch = batch.with_changes(resume=True)
            enqueue_batch(batch, due - now, queue_for(batch.priority), producer=producer)


def rejecter(what: str) -> Callable[[Message, Exception], None]:
    """Dead-letter a message with the reason: the validation error, or the unexpected exception."""

    def reject(message: Message, exc: Exception) -> None:
        if isinstance(exc, NotAllowed):
            dead_letter_message(message, f"unauthorized {what}: {exc} (field {exc.field})", "unauthorized")
        elif isinstance(exc, BadMessage | BadBatch | RequestError):
            dead_letter_message(message, f"invalid {what}: {exc}", "invalid")
        else:
            dead_letter_message(message, f"{what} failed: {type(exc).__name__}: {exc}", "error")

    return reject
