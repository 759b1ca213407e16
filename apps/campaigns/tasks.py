"""The task celery beat fires for a scheduled campaign (django-celery-beat PeriodicTask "campaign <id>")."""

from __future__ import annotations

import logging
import random
from datetime import datetime

from celery import shared_task
from celery.exceptions import Reject
from django.utils import timezone

from apps.core import outages

from . import parts, service

log = logging.getLogger(__name__)
RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, MAX_RETRIES = 2.0, 120.0, 30


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter: about 2, 4, 8 … s, at most two minutes."""
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** retries) * random.uniform(0.5, 1.0)


@shared_task(name=service.LAUNCH_TASK, bind=True, acks_late=True, max_retries=MAX_RETRIES)
def launch_campaign(self, campaign_id: int, fired_at: str | None = None) -> int | None:  # noqa: ANN001
    """Launch the occurrence this fire stands for. A database or broker outage retries with backoff;
    the retry carries the first fire's time, so it names the same occurrence and launches it once."""
    fired = datetime.fromisoformat(fired_at) if fired_at else timezone.now()
    try:
        notification = service.launch(campaign_id, now=fired)
    except outages.HAND_OFF_OUTAGES as exc:
        outages.forget_broken_connections()
        if self.request.called_directly or self.request.retries >= MAX_RETRIES:
            raise
        delay = retry_delay(self.request.retries)
        log.warning("campaign %s: launch met %s; retry %d in %.0f s", campaign_id, type(exc).__name__,
                    self.request.retries + 1, delay)
        try:
            raise self.retry(args=[campaign_id], kwargs={"fired_at": fired.isoformat()}, countdown=delay, exc=exc)
        except outages.HAND_OFF_OUTAGES:  # the Celery broker itself is down: the message comes back later
            raise Reject(type(exc).__name__, requeue=True) from None
    return notification.pk if notification else None


@shared_task(name=parts.RELEASE_TASK, bind=True, acks_late=True, max_retries=MAX_RETRIES)
def release_parts(self, run_id: int) -> None:  # noqa: ANN001
    """Release a split run's due parts (local-time waves) and look again when the next is due."""
    try:
        parts.follow_up(run_id)
    except outages.HAND_OFF_OUTAGES as exc:
        outages.forget_broken_connections()
        if self.request.called_directly or self.request.retries >= MAX_RETRIES:
            raise
        try:
            raise self.retry(countdown=retry_delay(self.request.retries), exc=exc)
        except outages.HAND_OFF_OUTAGES:
            raise Reject(type(exc).__name__, requeue=True) from None


@shared_task(name=parts.SWEEP_TASK, ignore_result=True)
def sweep_parts() -> int:
    """Beat's periodic look for due waves whose release failed (an outage, a lost task); each is released once."""
    try:
        released = parts.sweep()
    except outages.HAND_OFF_OUTAGES as exc:  # still out: the next sweep, a minute later, tries again
        outages.forget_broken_connections()
        log.warning("campaign sweep met %s; the next sweep tries again", type(exc).__name__)
        return 0
    if released:
        log.info("campaign sweep released %d overdue part(s)", released)
    return released
