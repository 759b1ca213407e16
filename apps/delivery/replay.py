"""Replay dead letters: resend their recipients, never one already sent; or publish a rejected event again.

A replayed batch is a fresh send with the category's full attempts. Its rows may overwrite only
dead-lettered rows (records.write(replace_dead_lettered=True)), and recipients already recorded
otherwise are dropped before the provider is called, so a replay, or two, cannot send twice.

A rejected event (notify.events), perhaps fixed in the admin first, is published to the topic again
with its headers, so it meets the same validation as any event; its idempotency key keeps a second
replay from making a second notification. A rejected platform event naming a notification that exists
(unsigned from before events were signed, or signed with a retired key) is published anew, signed, with
the priority of the notification's category.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.utils import timezone

from apps.core import queues
from apps.core.json_checks import is_int
from apps.streaming.topics import EVENTS, topic_name

from . import publisher, records
from .batch_message import BatchMessage
from .dead_letters import header_bytes, payload_bytes
from .models import PLATFORM_SOURCE, DeadLetter, Notification, NotificationStatus
from .tasks import enqueue_batch


class NotReplayable(ValueError):
    pass


def replay(letter: DeadLetter) -> int:
    """Queue the letter's recipients that are not sent yet, or publish its event again; returns how many
    recipients were queued (0 for an event)."""
    if letter.topic == topic_name(EVENTS) and letter.payload:
        _publish_again(letter)
        return 0
    if not (letter.notification_id and letter.channel and letter.recipient_ids):
        raise NotReplayable(f"dead letter {letter.pk} names no recipients to resend (reason: {letter.reason})")
    notification = Notification.objects.select_related("category").filter(pk=letter.notification_id).first()
    if notification is None:
        raise NotReplayable(f"dead letter {letter.pk}: notification {letter.notification_id} no longer exists")
    done = records.already_recorded(notification.pk, letter.channel, letter.recipient_ids, except_dead_lettered=True)
    pending = [r for r in letter.recipient_ids if r not in done]
    stamp = int(time.time() * 1000)
    size = settings.DISPATCH_BATCH_SIZE
    for index, start in enumerate(range(0, len(pending), size)):
        batch = BatchMessage(notification.pk, letter.channel, notification.category.priority,
                             f"replay:{letter.pk}:{stamp}:{index}", pending[start:start + size], replay=True)
        enqueue_batch(batch, 0.0, queues.retry_queue(batch.priority))
    DeadLetter.objects.filter(pk=letter.pk).update(replayed_at=timezone.now())
    return len(pending)


def _publish_again(letter: DeadLetter) -> None:
    notification = _platform_event_of(letter)
    if notification is not None:  # the operator's replay is the authority: signed anew, priority from the database
        if notification.status == NotificationStatus.ACCEPTED:  # one dispatched already needs no second event
            publisher.publish_notification_event(notification.pk, notification.category.priority)
    else:
        headers = [(name, value) for name, value in header_bytes(letter)]
        publisher.producer().produce(letter.topic, payload_bytes(letter), headers=headers)
        publisher.producer().flush(10)
    DeadLetter.objects.filter(pk=letter.pk).update(replayed_at=timezone.now())


def _platform_event_of(letter: DeadLetter) -> Notification | None:
    """The existing notification a rejected {"notification_id": N, ...} event names (one left unsigned from
    before events were signed, or with an expired bus key), else None."""
    try:
        data = json.loads(payload_bytes(letter))
    except ValueError:
        return None
    if not isinstance(data, dict) or not set(data) <= {"notification_id", "priority", "source"} \
            or data.get("source", PLATFORM_SOURCE) != PLATFORM_SOURCE or not is_int(data.get("notification_id")):
        return None
    return Notification.objects.select_related("category").filter(pk=data["notification_id"]).first()
