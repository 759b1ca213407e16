"""The notify.events schema. Our own triggers publish {"notification_id": N, "priority": P, "source": "platform"},
signed with the bus key like a batch (the priority is the category's, read from the database when the
notification was recorded). Other services publish a full request naming their source (see README
"Publishing events from other services"), which the bridge authorises, validates and records idempotently by
its idempotency_key."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from apps.streaming.client import EventProducer
from apps.streaming.topics import EVENTS, topic_name

from .batch_message import SIGNATURE_HEADER, signature
from .models import PLATFORM_SOURCE

if TYPE_CHECKING:
    from .batch_message import BatchMessage

_producer: EventProducer | None = None


def producer() -> EventProducer:
    global _producer
    if _producer is None:
        _producer = EventProducer(linger_ms=0)
    return _producer


def close_producer() -> None:
    global _producer
    if _producer is not None:
        _producer.flush(5)
        _producer = None


def publish_notification_event(notification_id: int, priority: str = "normal") -> None:
    """The priority rides along so the bridge picks the dispatch queue without reading the database."""
    event = {"notification_id": notification_id, "priority": priority, "source": PLATFORM_SOURCE}
    body = json.dumps(event).encode()
    producer().produce(topic_name(EVENTS), body, key=str(notification_id).encode(),
                       headers={SIGNATURE_HEADER: signature(body)})
    producer().flush(10)


NOT_BEFORE = "not-before"


def publish_due(topic: str, batch: BatchMessage, due: float, partition: int | None = None) -> None:
    """A recipient batch that must not be handed on before `due` (epoch seconds); the caller flushes."""
    body, headers = batch.signed()
    producer().produce(topic, body, key=str(batch.recipient_ids[0]).encode(),
                       headers={**headers, NOT_BEFORE: str(int(due * 1000))}, partition=partition)
