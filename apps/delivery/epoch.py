"""Redis's epoch: how the pipeline notices that Redis lost its data, so that PostgreSQL decides instead.

Claims, counters and the Celery queues live in Redis, and Redis may lose them all at once (a restart
without its AOF, FLUSHALL, a failover to a stale replica). The epoch is a random token kept in Redis
under the key prefix; whoever finds it missing writes a new one (atomically, so exactly one process
does). Every notification records the epoch it was dispatched under. Then:
- a batch of a notification dispatched under another epoch is never "fresh": the sender first drops
  the recipients PostgreSQL already records, so nobody recorded as sent is sent again;
- the process that wrote the new epoch dispatches again every notification left open under the old
  one, since its queued tasks may have vanished with Redis (bridges look every few seconds, so this
  happens within seconds of Redis coming back, not after the stalled-dispatch timer).
"""

from __future__ import annotations

import logging
import time
import uuid

import kombu.exceptions
import redis
from django import db
from django.conf import settings

from apps.core.outages import forget_broken_connections
from apps.core.redis_client import client, key, script

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 5.0

_CURRENT = """
local epoch = redis.call('GET', KEYS[1])
if epoch then return {epoch, 0} end
redis.call('SET', KEYS[1], ARGV[1])
return {ARGV[1], 1}
"""
_current = script(_CURRENT)
_last_check = 0.0


def epoch_key() -> str:
    return key("epoch")


def current() -> str:
    """This Redis's epoch, "<key prefix><token>"; writing a new one (and re-dispatching) if it was lost."""
    token, created = _current(keys=[epoch_key()], args=[uuid.uuid4().hex[:16]], client=client())
    epoch = f"{settings.REDIS_KEY_PREFIX}{token.decode() if isinstance(token, bytes) else token}"
    if created:
        try:
            _redispatch_open_notifications(epoch)
        except Exception:
            client().delete(epoch_key())  # not done: let the next look write it again and re-dispatch
            raise
    return epoch


def check_now_and_then() -> None:
    """For long-running processes (the bridges): notice a lost epoch even while no batch is claimed.
    Redis being unreachable is not this check's to report: the hand-off meets it and waits it out."""
    global _last_check
    if time.monotonic() - _last_check >= CHECK_EVERY_SECONDS:
        _last_check = time.monotonic()
        try:
            current()
        except (redis.RedisError, db.Error, kombu.exceptions.OperationalError) as exc:
            log.info("epoch check skipped: %s", type(exc).__name__)
            if isinstance(exc, db.Error):  # InterfaceError too: a connection an outage closed is dropped
                forget_broken_connections()


def _redispatch_open_notifications(new_epoch: str) -> None:
    from apps.core.queues import dispatch_queue

    from .models import Notification, NotificationStatus
    from .tasks import dispatch_notification

    lost = list(Notification.objects.filter(status__in=[NotificationStatus.DISPATCHING, NotificationStatus.DISPATCHED],
                                            dispatch_epoch__startswith=settings.REDIS_KEY_PREFIX)
                .exclude(dispatch_epoch=new_epoch).values_list("pk", "category__priority"))
    count = 0
    for notification_id, priority in lost:
        dispatch_notification.apply_async(args=[notification_id], kwargs={"again": True},
                                          queue=dispatch_queue(priority))
        count += 1
    if count:
        log.warning("Redis lost its data (new epoch); %d open notification(s) dispatched again, checking PostgreSQL"
                    " for what was already sent", count)
