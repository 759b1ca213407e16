"""Replay dead letters: resend their recipients, never one already sent.

A replayed batch is a fresh send with the category's full attempts. Its rows may overwrite only
dead-lettered rows (records.write(replace_dead_lettered=True)), and recipients already recorded
otherwise are dropped before the provider is called, so a replay, or two, cannot send twice.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from . import queues, records
from .models import DeadLetter, Notification
from .tasks import enqueue_batch


class NotReplayable(ValueError):
    pass


def replay(letter: DeadLetter) -> int:
    """Queue the letter's recipients that are not sent yet; returns how many were queued."""
    if not (letter.notification_id and letter.channel and letter.recipient_ids):
        raise NotReplayable(f"dead letter {letter.pk} names no recipients to resend (reason: {letter.reason})")
    notification = Notification.objects.select_related("category").filter(pk=letter.notification_id).first()
    if notification is None:
        raise NotReplayable(f"dead letter {letter.pk}: notification {letter.notification_id} no longer exists")
    done = records.already_recorded(notification.pk, letter.channel, letter.recipient_ids, except_dead_lettered=True)
    pending = [r for r in letter.recipient_ids if r not in done]
    stamp = int(time.time() * 1000)
    size = settings.SEND_CHUNK_SIZE
    for index, start in enumerate(range(0, len(pending), size)):
        enqueue_batch({"n": notification.pk, "c": letter.channel, "p": notification.category.priority,
                       "b": f"replay:{letter.pk}:{stamp}:{index}", "r": pending[start:start + size], "a": 1,
                       "replay": True}, 0.0, queues.retry_queue(notification.category.priority))
    DeadLetter.objects.filter(pk=letter.pk).update(replayed_at=timezone.now())
    return len(pending)
