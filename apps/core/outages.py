"""Dependency outages (Redis or PostgreSQL gone for a moment) in Celery tasks: requeue, never drop.

Celery acknowledges a late-acked task that raised, so an outage would lose its batch. A task
wrapped here instead drops its broken database connection, pauses, and rejects its message with
requeue: it runs again once the dependency is back, and batch claims make the rerun resume.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import kombu.exceptions
import redis
from celery.exceptions import Reject
from django import db

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Kafka could not be reached (raised by apps.streaming, which alone speaks to it)."""


OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, db.OperationalError, db.InterfaceError)
# What a bridge's hand-off meets when a dependency is down: the above, the Celery broker, or Kafka.
HAND_OFF_OUTAGES = (*OUTAGES, kombu.exceptions.OperationalError, BrokerUnavailable)
PAUSE_SECONDS = 1.0

F = TypeVar("F", bound=Callable)


def is_outage(exc: BaseException) -> bool:
    """A dependency (Redis, PostgreSQL, the Celery broker, Kafka) is unreachable: wait, do not blame the message."""
    return isinstance(exc, HAND_OFF_OUTAGES)


def forget_broken_connections() -> None:
    """Close this thread's database connections after an outage; the next query opens a fresh one."""
    for connection in db.connections.all(initialized_only=True):
        try:
            connection.close()
        except db.Error:
            pass


def requeue_on_outage(task: F) -> F:
    @functools.wraps(task)
    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return task(*args, **kwargs)
        except OUTAGES as exc:
            log.warning("%s: dependency unavailable (%s); requeued", task.__name__, type(exc).__name__)
            forget_broken_connections()
            time.sleep(PAUSE_SECONDS)
            raise Reject(f"{type(exc).__name__}", requeue=True) from None

    return run  # type: ignore[return-value]
