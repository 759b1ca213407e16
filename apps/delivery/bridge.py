"""The Kafka-to-Celery bridge: turns consumed messages into Celery tasks.

The consumer loop (apps.streaming.client.run_consumer) commits a batch of messages only after these
handlers return, i.e. after every task they stand for is in the Celery broker. Bad messages are
dead-lettered with the reason and the stream moves on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from celery import current_app
from django.conf import settings

from apps.streaming.client import Message, header

from . import clock, events, progress, queues
from .dead_letters import dead_letter
from .models import Source
from .requests import RequestError, parse_request
from .service import submit
from .tasks import dispatch_notification, enqueue_batch

log = logging.getLogger(__name__)

MAX_BATCH_RECIPIENTS = 50_000


class BadMessage(ValueError):
    pass


def handle_events(messages: list[Message]) -> None:
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                notification_id, priority = _notification_from_event(message)
            except (BadMessage, RequestError) as exc:
                _reject(message, "event", exc)
                continue
            dispatch_notification.apply_async(args=[notification_id], queue=queues.dispatch_queue(priority),
                                              producer=producer)
            progress.mark(notification_id, "event_handed")


def _notification_from_event(message: Message) -> tuple[int, str]:
    """The notification an event stands for, and its priority."""
    from apps.preferences.models import Priority

    if len(message.value() or b"") > settings.API_MAX_BODY_BYTES:  # the same bound as the HTTP API's
        raise BadMessage(f"larger than {settings.API_MAX_BODY_BYTES} bytes")
    data = _decode(message)
    if "notification_id" in data and set(data) <= {"notification_id", "priority"}:
        if not isinstance(data["notification_id"], int) or isinstance(data["notification_id"], bool):
            raise BadMessage("notification_id must be an integer")
        priority = data.get("priority", Priority.NORMAL)
        if priority not in Priority.values:
            raise BadMessage(f"priority must be one of {Priority.values}")
        return data["notification_id"], priority
    if not data.get("idempotency_key"):
        raise BadMessage("events from other services need an idempotency_key")
    notification = submit(parse_request(data), Source.KAFKA, publish=False)
    return notification.pk, notification.category.priority


def handle_batches(messages: list[Message]) -> None:
    chunk_size = settings.SEND_CHUNK_SIZE
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                batch = _decode_batch(message)
            except BadMessage as exc:
                _reject(message, "batch", exc)
                continue
            queue = queues.send_queue(batch["p"])
            ids = batch["r"]
            for index, start in enumerate(range(0, len(ids), chunk_size)):
                chunk = batch | {"b": f"{batch['b']}.{index}", "r": ids[start:start + chunk_size]}
                enqueue_batch(chunk, 0, queue, producer=producer)


def retry_due_at(message: Message) -> float:
    """A retry message's not-before time (epoch seconds); one without a readable header is due now."""
    try:
        return int(header(message, events.NOT_BEFORE) or 0) / 1000.0
    except ValueError:
        return 0.0


def handle_retries(messages: list[Message]) -> None:
    """Hand due retry batches (notify.retry) to the retry queue; the consumer holds back the rest."""

    def check(batch: dict) -> None:
        if not isinstance(batch.get("a"), int) or batch["a"] < 2:
            raise BadMessage("a (attempt) must be an integer >= 2")

    _hand_back_when_due(messages, "retry batch", check, time.time(), queues.retry_queue)


def handle_deferred(messages: list[Message]) -> None:
    """Hand deferred batches (notify.deferred) back to their send queue when their window opens."""

    def check(batch: dict) -> None:
        if batch.get("d") not in ("throttled", "quiet_hours") or not isinstance(batch.get("a"), int):
            raise BadMessage("d (throttled | quiet_hours) and a (attempt) are required")

    # Resume: a recipient may have been reached meanwhile by a re-dispatch of the notification.
    _hand_back_when_due(messages, "deferred batch", check, clock.now(), queues.send_queue, {"resume": True})


def _hand_back_when_due(messages: list[Message], what: str, check: Callable[[dict], None], now: float,
                        queue_for: Callable[[str], str], extra: dict | None = None) -> None:
    """Batches with a not-before header to Celery, each with a countdown to its due time."""
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                batch = _decode_batch(message)
                check(batch)
            except BadMessage as exc:
                _reject(message, what, exc)
                continue
            enqueue_batch(batch | (extra or {}), retry_due_at(message) - now, queue_for(batch["p"]),
                          producer=producer)


def _reject(message: Message, what: str, exc: Exception) -> None:
    dead_letter(message.topic(), f"invalid {what}: {exc}", payload_size=len(message.value() or b""))


def _decode(message: Message) -> dict:
    raw = message.value() or b""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("not JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    return data


def _decode_batch(message: Message) -> dict:
    from apps.preferences.models import Channel, Priority

    data = _decode(message)
    ids = data.get("r")
    if not isinstance(data.get("n"), int) or data.get("c") not in Channel.values or data.get("p") not in \
            Priority.values or not isinstance(data.get("b"), str):
        raise BadMessage("expected n (int), c (channel), p (priority), b (batch id)")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH_RECIPIENTS or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadMessage(f"r must be a list of 1..{MAX_BATCH_RECIPIENTS} recipient ids")
    return data
