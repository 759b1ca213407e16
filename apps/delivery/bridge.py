"""The Kafka-to-Celery bridge: turns consumed messages into Celery tasks.

The consumer loop (apps.streaming.client.run_consumer) commits a batch of messages only after these
handlers return, i.e. after every task they stand for is in the Celery broker. Bad messages are
dead-lettered with the reason and the stream moves on.
"""

from __future__ import annotations

import json
import logging
import time

from celery import current_app
from django.conf import settings

from apps.streaming.client import Message, header

from . import queues
from .dead_letters import dead_letter
from .models import Source
from .requests import RequestError, parse_request
from .service import submit
from .tasks import dispatch_notification, send_chunk, send_retry

log = logging.getLogger(__name__)

MAX_BATCH_RECIPIENTS = 50_000


class BadMessage(ValueError):
    pass


def handle_events(messages: list[Message]) -> None:
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                notification_id = _notification_from_event(message)
            except (BadMessage, RequestError) as exc:
                dead_letter(message.topic(), f"invalid event: {exc}", payload_size=len(message.value() or b""))
                continue
            dispatch_notification.apply_async(args=[notification_id], queue=queues.DISPATCH, producer=producer)


def _notification_from_event(message: Message) -> int:
    data = _decode(message)
    if set(data) == {"notification_id"}:
        if not isinstance(data["notification_id"], int):
            raise BadMessage("notification_id must be an integer")
        return data["notification_id"]
    if not data.get("idempotency_key"):
        raise BadMessage("events from other services need an idempotency_key")
    return submit(parse_request(data), Source.KAFKA, publish=False).pk


def handle_batches(messages: list[Message]) -> None:
    chunk_size = settings.SEND_CHUNK_SIZE
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                batch = _decode_batch(message)
            except BadMessage as exc:
                dead_letter(message.topic(), f"invalid batch: {exc}", payload_size=len(message.value() or b""))
                continue
            queue = queues.send_queue(batch["p"])
            ids = batch["r"]
            for index, start in enumerate(range(0, len(ids), chunk_size)):
                send_chunk.apply_async(
                    kwargs={"notification_id": batch["n"], "channel": batch["c"], "batch_id": f"{batch['b']}.{index}",
                            "recipient_ids": ids[start:start + chunk_size], "resume": batch.get("resume", False),
                            "priority": batch["p"]},
                    queue=queue, producer=producer,
                )


def retry_due_at(message: Message) -> float:
    """A retry message's not-before time (epoch seconds); one without a readable header is due now."""
    try:
        return int(header(message, "not-before") or 0) / 1000.0
    except ValueError:
        return 0.0


def handle_retries(messages: list[Message]) -> None:
    """Hand due retry batches (notify.retry) to the send.retry queue; the consumer holds back the rest."""
    now = time.time()
    with current_app.producer_or_acquire() as producer:
        for message in messages:
            try:
                batch = _decode_batch(message)
                if not isinstance(batch.get("a"), int) or batch["a"] < 2:
                    raise BadMessage("a (attempt) must be an integer >= 2")
            except BadMessage as exc:
                dead_letter(message.topic(), f"invalid retry batch: {exc}", payload_size=len(message.value() or b""))
                continue
            send_retry(batch, retry_due_at(message) - now, producer=producer)


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
