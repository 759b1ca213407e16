"""Celery tasks: dispatch a notification's audience, send batches, finalize."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core import metrics, queues, redis_client
from apps.core.logs import log_context
from apps.core.outages import is_outage, requeue_on_outage
from apps.streaming.topics import RETRY, channel_topic, retry_partition, topic_name

from . import epoch, holders, progress, publisher, records, sender
from .audience_stream import stream_audience
from .batch_message import BatchMessage
from .dead_letters import dead_letter
from .models import DeliveryStatus, Notification, NotificationStatus
from .sender import BatchBusy, RateLimited, notification_info
from .signals import notification_completed

log = logging.getLogger(__name__)


DISPATCH_LEASE_SECONDS = 60


@shared_task(name="delivery.dispatch", bind=True, acks_late=True, max_retries=None)
@requeue_on_outage
def dispatch_notification(self, notification_id: int, again: bool = False) -> None:
    """Stream the audience and publish recipient batches to notify.<channel>.<priority>.

    `again`: a re-dispatch of a stalled notification (see reconcile_notification). Recipients that
    a batch already claimed are not sent again: the new batches find them claimed (foreign)."""
    notification = Notification.objects.select_related("category").filter(pk=notification_id).first()
    if notification is None:
        dead_letter("dispatch", "unknown notification", reason_kind="unknown_notification",
                    notification_id=notification_id)
        return
    if notification.status == NotificationStatus.COMPLETED:
        return
    if notification.status == NotificationStatus.DISPATCHED and not again:
        # A redelivered dispatch: the first run may have died after recording the status and before
        # watching for completion, which would leave the notification open for ever.
        _watch_completion(notification_id, notification.category.priority, notification.targeted or 0)
        return
    # One dispatcher at a time: a second event for the same notification (a trigger retried while it
    # was still accepted) must not stream the audience alongside the first, or both would send. The
    # lease is renewed per page; the copy waits and then finds the notification dispatched, or, if
    # the first dispatcher died, takes over once the lease lapses (at once if it died on this host).
    lease = redis_client.key(f"dispatching:{notification_id}")
    holder = holders.acquire(lease, DISPATCH_LEASE_SECONDS)
    if holder is None:
        raise self.retry(countdown=DISPATCH_LEASE_SECONDS / 4)
    try:
        _dispatch(notification, lease, again)
    except Exception as exc:
        if is_outage(exc):
            raise
        # Not an outage, so it would fail the same way again: the notification fails, visibly.
        log.exception("dispatch of notification %s failed", notification_id)
        _set_status(notification_id, status=NotificationStatus.FAILED)
        dead_letter("dispatch", f"dispatch failed: {type(exc).__name__}: {exc}", reason_kind="error",
                    notification_id=notification_id)
    finally:
        holders.release(lease, holder)


def _dispatch(notification: Notification, lease: str, again: bool = False) -> None:
    notification_id = notification.pk
    # A second dispatch of the same notification (a redelivered task, a stalled one, or one whose Redis
    # state was lost, which also resets this counter) marks its batches "resume", so senders drop
    # recipients already recorded instead of trusting the batch numbering.
    generation = redis_client.client().incr(redis_client.key(f"dispatch:{notification_id}"))
    resume = generation > 1 or again or bool(notification.dispatch_epoch)
    progress.mark(notification_id, "dispatch_start")
    _set_status(notification_id, status=NotificationStatus.DISPATCHING, dispatch_epoch=epoch.current())
    producer = publisher.producer()  # one per process: a new producer per dispatch costs a broker handshake
    priority, category = notification.category.priority, notification.category.slug
    batch_size = settings.DISPATCH_BATCH_SIZE
    targeted = 0
    for channel in notification.channels:
        topic = channel_topic(channel, priority)
        sequence = 0
        for page in stream_audience(notification, channel):
            redis_client.client().expire(lease, DISPATCH_LEASE_SECONDS)
            targeted += page.size
            _record_skipped(notification_id, channel, category, priority, page.inactive, "inactive")
            _record_skipped(notification_id, channel, category, priority, page.opted_out, "opted_out")
            _record_skipped(notification_id, channel, category, priority, page.suppressed, "suppressed")
            if sequence == 0 and page.last and 0 < len(page.sendable) <= batch_size:
                # The whole audience is one send batch (an OTP, a small list): hand it to the sender
                # directly; the batch topic and its bridge would only add a hop of latency.
                enqueue_batch(BatchMessage(notification_id, channel, priority, f"{channel}:{generation}:0",
                                           page.sendable, resume=resume), 0, queues.send_queue(priority))
                continue
            for start in range(0, len(page.sendable), batch_size):
                ids = page.sendable[start:start + batch_size]
                message = BatchMessage(notification_id, channel, priority, f"{channel}:{generation}:{sequence}", ids,
                                       resume=resume)
                # Single-recipient messages keep per-user order; batches spread over partitions.
                key = str(ids[0]) if len(ids) == 1 else str(sequence)
                body, headers = message.signed()
                producer.produce(topic, body, key=key.encode(), headers=headers)
                sequence += 1
    producer.flush(60)
    progress.mark(notification_id, "dispatch_end")
    _set_status(notification_id, status=NotificationStatus.DISPATCHED, targeted=targeted,
                dispatched_at=timezone.now())
    _watch_completion(notification_id, priority, targeted)


def _watch_completion(notification_id: int, priority: str, targeted: int) -> None:
    """Give the counters the audience size, complete the notification if every batch has already
    finished, and start the reconcile safety net. Safe to run again."""
    redis_client.client().hset(progress.progress_key(notification_id), "targeted", targeted)
    _add_progress(notification_id, priority)  # every batch may already have finished
    reconcile_notification.apply_async(args=[notification_id, priority], countdown=_reconcile_after(targeted),
                                       queue=queues.dispatch_queue(priority))


def _reconcile_after(targeted: int, checks: int = 0) -> float:
    """Counting a big notification's rows takes a while, so check it less often; and back off, since
    deferred recipients may keep one open for hours."""
    return min(max(settings.RECONCILE_SECONDS, targeted / 50_000) * 2 ** checks, 600.0)


def _set_status(notification_id: int, **fields) -> None:  # noqa: ANN003
    """Status and counts of a notification, committed without waiting for the WAL flush.

    They summarise what the delivery rows record durably and are recomputed by the next finalize;
    not waiting keeps an OTP's status updates from queueing behind a blast's WAL writes.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        Notification.objects.filter(pk=notification_id).update(**fields)


def _record_skipped(notification_id: int, channel: str, category: str, priority: str, recipient_ids: list[int],
                    reason: str) -> None:
    if not recipient_ids:
        return
    outcomes = records.Outcomes()
    for recipient_id in recipient_ids:
        outcomes.add(recipient_id, DeliveryStatus.SKIPPED, reason)
    counts = records.write(notification_id, channel, outcomes)
    metrics.count(channel, category, "none", "skipped", counts.get("skipped", 0))
    _add_progress(notification_id, priority, **counts)


def _add_progress(notification_id: int, priority: str, **counts: int) -> None:
    if progress.add(notification_id, **counts):
        finalize_notification.apply_async(args=[notification_id], queue=queues.dispatch_queue(priority))


def _send_batch(self, notification_id: int, channel: str, batch_id: str, recipient_ids: list[int],  # noqa: ANN001
                attempt: int = 1, resume: bool = False, priority: str = "normal", replay: bool = False,
                deferred: str = "", device_ids: list[int] | None = None) -> dict:
    """One batch (a Kafka message, up to NOTIFY_DISPATCH_BATCH_SIZE recipients), sent by sender.send_batch."""

    def hand_on(report: sender.BatchReport) -> None:
        if report.dead_ids:
            dead_letter(f"send.{channel}", report.dead_reason, reason_kind=report.dead_reason_kind,
                        notification_id=notification_id, channel=channel, recipient_ids=report.dead_ids)
        if report.retry_ids:
            schedule_retry(BatchMessage(notification_id, channel, priority, f"{batch_id}/r{attempt}",
                                        report.retry_ids, attempt=attempt + 1), report.retry_delay)
        if report.retry_devices:
            devices = [device for ids in report.retry_devices.values() for device in ids]
            schedule_retry(BatchMessage(notification_id, channel, priority, f"{batch_id}/v{attempt}",
                                        list(report.retry_devices), attempt=attempt + 1, device_ids=devices),
                           report.retry_delay)

    try:
        with log_context(notification_id, batch_id):
            report = sender.send_batch(notification_id, channel, batch_id, recipient_ids, attempt, resume, replay,
                                       priority, deferred, device_ids, hand_on)
    except BatchBusy:
        raise self.retry(countdown=10) from None
    except RateLimited as exc:
        info = notification_info(notification_id)
        metrics.count(channel, info.category if info else "", exc.provider, "throttled", len(recipient_ids))
        raise self.retry(countdown=exc.wait) from None
    except Exception as exc:
        if is_outage(exc):
            raise
        # Not an outage, so running it again would fail the same way: dead-letter the batch, replayable.
        log.exception("batch %s of notification %s failed", batch_id, notification_id)
        return _dead_letter_batch(notification_id, channel, priority, recipient_ids, f"{type(exc).__name__}: {exc}")
    if not report.handed_on:  # a report of no batch claimed: an unknown notification, a parked one
        hand_on(report)
    if report.completed:
        finalize_notification.apply_async(args=[notification_id], queue=queues.dispatch_queue(priority))
    return report.counts


_TASK_OPTIONS = {"bind": True, "acks_late": True, "max_retries": None}
send_batch = shared_task(name="delivery.send_batch", **_TASK_OPTIONS)(requeue_on_outage(_send_batch))
# Batches queued under the task's former name ("delivery.send_chunk", before 2026-12) still run after an upgrade.
shared_task(name="delivery.send_chunk", **_TASK_OPTIONS)(requeue_on_outage(_send_batch))

def _dead_letter_batch(notification_id: int, channel: str, priority: str, recipient_ids: list[int],
                       reason: str) -> dict:
    """Record the batch's recipients that have no final state yet as dead-lettered, with one dead letter."""
    outcomes = records.Outcomes()
    reason = f"send failed: {reason}"[:300]
    for recipient_id in recipient_ids:
        outcomes.add(recipient_id, DeliveryStatus.DEAD_LETTERED, reason)
    counts = records.write(notification_id, channel, outcomes)
    dead_letter(f"send.{channel}", reason, reason_kind="error", notification_id=notification_id, channel=channel,
                recipient_ids=recipient_ids)
    _add_progress(notification_id, priority, **counts)
    return dict(counts)


def schedule_retry(batch: BatchMessage, delay: float) -> None:
    """Resend a batch's failed recipients after `delay`: held by Celery if short, else via the retry topic.

    A long delay never holds a worker or a Celery message: the batch waits in notify.retry with a
    not-before header, and the retry bridge hands it back when it is due.
    """
    if delay <= settings.RETRY_HOLD_SECONDS:
        enqueue_batch(batch, delay, queues.retry_queue(batch.priority))
        return
    publisher.publish_due(topic_name(RETRY), batch, time.time() + delay,
                          partition=retry_partition(delay, batch.recipient_ids[0]))
    publisher.producer().flush(10)


def enqueue_batch(batch: BatchMessage, delay: float, queue: str, producer=None) -> None:  # noqa: ANN001
    """A batch as a send task, due after `delay` seconds."""
    # kwargsrepr: Celery would otherwise build a repr of every id for the message headers.
    send_batch.apply_async(kwargs=batch.as_kwargs(), countdown=max(delay, 0.0), queue=queue, producer=producer,
                           argsrepr="()", kwargsrepr=f"{{batch {batch.batch_id!r} of notification "
                                                  f"{batch.notification_id}: {len(batch.recipient_ids)} recipients}}")


@shared_task(name="delivery.reconcile", acks_late=True)
@requeue_on_outage
def reconcile_notification(notification_id: int, priority: str = "normal", checks: int = 0) -> None:
    """The safety net under the Redis counters: until the notification completes, check now and then
    whether PostgreSQL records every recipient, and if so, repair the counters and finalize.

    A send task that an outage stopped between writing its rows and counting them is resumed,
    and the resumed run finds those rows recorded and counts nothing: without this, such a
    notification would wait forever one batch short.
    """
    notification = Notification.objects.filter(pk=notification_id).values("status", "targeted").first()
    if notification is None or notification["status"] == NotificationStatus.COMPLETED:
        return
    counts = records.count_by_status(notification_id)
    targeted = notification["targeted"] or 0
    if sum(counts.values()) >= targeted:
        log.info("notification %s reconciled from PostgreSQL", notification_id)
        progress.repair(notification_id, counts)
        progress.mark(notification_id, "all_recorded")
        finalize_notification(notification_id)
        return
    last_recorded = progress.read(notification_id).get("t_last_recorded", 0.0)
    if notification["status"] == NotificationStatus.DISPATCHED and \
            time.time() - last_recorded > settings.REDISPATCH_STALLED_SECONDS:
        # Nothing recorded for a long while and recipients still open: a batch can be lost outright
        # (kombu's Redis transport pops a task before noting it unacknowledged, and a broker restart
        # between the two drops it). Dispatching again sends only what no batch has claimed.
        log.warning("notification %s stalled with %d of %d recorded; dispatching it again", notification_id,
                    sum(counts.values()), targeted)
        dispatch_notification.apply_async(args=[notification_id], kwargs={"again": True},
                                          queue=queues.dispatch_queue(priority))
        return
    reconcile_notification.apply_async(args=[notification_id, priority, checks + 1],
                                       countdown=_reconcile_after(targeted, checks + 1),
                                       queue=queues.dispatch_queue(priority))


@shared_task(name="delivery.finalize", acks_late=True)
@requeue_on_outage
def finalize_notification(notification_id: int) -> None:
    """Recount from PostgreSQL (the record) and close the notification."""
    counts = records.count_by_status(notification_id)
    _set_status(notification_id, status=NotificationStatus.COMPLETED, completed_at=timezone.now(),
                sent=counts["sent"], failed=counts["failed"] + counts["dead_lettered"], skipped=counts["skipped"])
    progress.mark(notification_id, "completed")
    notification_completed.send(sender=Notification, notification_id=notification_id)
