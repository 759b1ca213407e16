"""Dead letters: recorded in PostgreSQL (visible in the admin, replayable) and published to notify.dlq.

A rejected Kafka message keeps its topic, partition, offset, headers and payload (bounded). Logs
get only identifiers and the reason, never a message body or contact details.
"""

from __future__ import annotations

import base64
import json
import logging

from django.conf import settings

from apps.core import metrics
from apps.streaming.consumer import Message
from apps.streaming.topics import DEFERRED, DLQ, EVENTS, RETRY, topic_name

from .models import DeadLetter
from .publisher import producer

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_HEADERS = 32


def dead_letter(source_topic: str, reason: str, *, reason_kind: str, notification_id: int | None = None,
                channel: str = "", recipient_ids: list[int] | None = None, payload: bytes = b"",
                partition: int | None = None, offset: int | None = None,
                headers: list[tuple[str, bytes | str | None]] | None = None) -> DeadLetter:
    text, encoding = as_text(payload[:MAX_PAYLOAD_BYTES])
    letter = DeadLetter.objects.create(
        topic=as_text(source_topic.encode("utf-8", "replace"))[0][:200], reason=_storable(reason)[:500],
        reason_kind=reason_kind, notification_id=notification_id, channel=channel,
        recipient_ids=list(recipient_ids or [])[:10_000], partition=partition, offset=offset,
        headers=_headers(headers or []), payload=text, payload_encoding=encoding, payload_size=len(payload),
    )
    record = {"dead_letter_id": letter.pk, "topic": letter.topic, "partition": partition, "offset": offset,
              "reason": letter.reason, "reason_kind": reason_kind, "notification_id": notification_id,
              "channel": channel, "recipients": len(recipient_ids or []), "headers": letter.headers,
              "payload": text, "payload_encoding": encoding, "payload_size": len(payload)}
    producer().produce(topic_name(DLQ), json.dumps(record).encode())
    producer().flush(10)
    metrics.DEAD_LETTERS.labels(source_kind(source_topic), reason_kind).inc()
    log.warning("dead-lettered from %s[%s]@%s: %s (notification %s, %d recipient(s))", letter.topic, partition,
                offset, letter.reason, notification_id, len(recipient_ids or []))
    return letter


def dead_letter_message(message: Message, reason: str, reason_kind: str) -> DeadLetter:
    """A consumed Kafka message that cannot be handled, kept as it arrived."""
    return dead_letter(message.topic() or "", reason, reason_kind=reason_kind, payload=message.value() or b"",
                       partition=message.partition(), offset=message.offset(), headers=message.headers())


def as_text(raw: bytes) -> tuple[str, str]:
    """The bytes as text when they are NUL-free UTF-8 (PostgreSQL text holds no NUL), else as base64."""
    try:
        text = raw.decode()
        if "\x00" not in text:
            return text, DeadLetter.Encoding.TEXT
    except UnicodeDecodeError:
        pass
    return base64.b64encode(raw).decode(), DeadLetter.Encoding.BASE64


def payload_bytes(letter: DeadLetter) -> bytes:
    return _as_bytes(letter.payload, letter.payload_encoding)


def header_bytes(letter: DeadLetter) -> list[tuple[str, bytes]]:
    return [(name, _as_bytes(value, encoding)) for name, value, encoding in letter.headers]


def _as_bytes(text: str, encoding: str) -> bytes:
    return base64.b64decode(text) if encoding == DeadLetter.Encoding.BASE64 else text.encode()


def source_kind(topic: str) -> str:
    """A bounded label for a dead letter's source: events, batch, retry, deferred, send or dispatch."""
    name = topic.removeprefix(settings.KAFKA_TOPIC_PREFIX)
    if name in (EVENTS, RETRY, DEFERRED):
        return name.split(".")[1]
    if name.startswith("notify."):
        return "batch"
    return name.split(".")[0] if name.split(".")[0] in ("send", "dispatch") else "other"


def _headers(headers: list[tuple[str, bytes | str | None]]) -> list[list[str]]:
    """[[name, value, encoding], ...], each value as the payload is kept."""
    kept = []
    for name, value in headers[:MAX_HEADERS]:
        raw = value.encode() if isinstance(value, str) else (value or b"")
        kept.append([_storable(name)[:200], *as_text(raw[:4096])])
    return kept


def _storable(text: str) -> str:
    return text.replace("\x00", "\\u0000")
