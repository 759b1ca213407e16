"""Dead letters: recorded in PostgreSQL (visible in the admin) and published to notify.dlq.

Only identifiers and the reason are kept and logged, never a message body or contact details.
"""

from __future__ import annotations

import json
import logging

from apps.monitoring import metrics
from apps.streaming.topics import DLQ, topic_name

from .events import producer
from .models import DeadLetter

log = logging.getLogger(__name__)


def dead_letter(source_topic: str, reason: str, *, notification_id: int | None = None, channel: str = "",
                recipient_ids: list[int] | None = None, payload_size: int = 0) -> DeadLetter:
    letter = DeadLetter.objects.create(
        topic=source_topic, reason=reason[:500], notification_id=notification_id, channel=channel,
        recipient_ids=list(recipient_ids or [])[:10_000], payload_size=payload_size,
    )
    record = {"dead_letter_id": letter.pk, "topic": source_topic, "reason": letter.reason,
              "notification_id": notification_id, "channel": channel, "recipients": len(recipient_ids or [])}
    producer().produce(topic_name(DLQ), json.dumps(record).encode())
    producer().flush(10)
    metrics.DEAD_LETTERS.labels("send" if source_topic.startswith("send.") else "message").inc()
    log.warning("dead-lettered from %s: %s (notification %s, %d recipient(s))",
                source_topic, letter.reason, notification_id, len(recipient_ids or []))
    return letter
