"""Celery tasks of the callbacks queue (apps/core/queues.py CALLBACKS), served by its own worker so a
slow receiver never holds a dispatch or a send."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.core import queues
from apps.core.outages import requeue_on_outage
from apps.delivery.models import Notification, NotificationStatus

from . import attempts, messages
from .models import CallbackEndpoint, CallbackMessage, EventType, MessageStatus

SWEEP_GRACE_SECONDS = 60  # a retry this late is carried by no task (its countdown task would have run)
UNSENT_GRACE_SECONDS = 600  # a new message never tried this long after it was stored lost its task
SWEEP_LOOKBACK = timedelta(days=2)


@shared_task(name="callbacks.report_completion", acks_late=True)
@requeue_on_outage
def report_completion(notification_id: int) -> None:
    """Store what a completed notification reports to its endpoints, then send each message."""
    for ids in messages.create_for(notification_id):
        for message_id in ids:
            deliver.apply_async(args=[message_id], queue=queues.CALLBACKS)


@shared_task(name="callbacks.deliver", acks_late=True)
@requeue_on_outage
def deliver(message_id: str) -> None:
    delay = attempts.attempt(message_id)
    # A retry due soon waits in Celery; a later one is left to the sweep (a countdown longer than the
    # broker's visibility timeout would be delivered twice).
    if delay is not None and delay <= settings.CALLBACK_HOLD_SECONDS:
        deliver.apply_async(args=[message_id], countdown=delay, queue=queues.CALLBACKS)


@shared_task(name="callbacks.sweep", acks_late=True)
@requeue_on_outage
def sweep() -> int:
    """Every minute (beat): send what is overdue (a long backoff, or a task Redis lost), and report the
    completed notifications whose report task was lost. Returns how many tasks it enqueued."""
    now = timezone.now()
    due = list(CallbackMessage.objects.filter(
        status=MessageStatus.PENDING, next_attempt_at__lte=now - timedelta(seconds=SWEEP_GRACE_SECONDS))
        .exclude(leased_until__gt=now).values_list("pk", flat=True)[:10_000])
    stale_new = CallbackMessage.objects.filter(status=MessageStatus.PENDING, attempts=0, next_attempt_at=None,
                                               created_at__lte=now - timedelta(seconds=UNSENT_GRACE_SECONDS))
    due += list(stale_new.values_list("pk", flat=True)[:10_000])
    for message_id in due:
        deliver.apply_async(args=[message_id], queue=queues.CALLBACKS)
    reported = CallbackMessage.objects.filter(notification_id=OuterRef("pk"),
                                              event_type=EventType.NOTIFICATION_COMPLETED)
    listening = CallbackEndpoint.objects.filter(api_key_id=OuterRef("api_key_id"), is_active=True,
                                                created_at__lte=OuterRef("completed_at"))
    unreported = Notification.objects.filter(
        Exists(listening), status=NotificationStatus.COMPLETED, created_at__gte=now - SWEEP_LOOKBACK,
        completed_at__lte=now - timedelta(seconds=SWEEP_GRACE_SECONDS)).exclude(Exists(reported))
    missing = list(unreported.values_list("pk", flat=True)[:1000])
    for notification_id in missing:
        report_completion.apply_async(args=[notification_id], queue=queues.CALLBACKS)
    return len(due) + len(missing)
