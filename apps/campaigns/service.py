"""What a marketer does to a campaign: schedule, launch, pause, resume, cancel, test. Each is audited."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import crontab as Crontab
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from apps.audience.models import Follow, Recipient
from apps.content import template_checks

from . import parts
from .models import (
    AudienceKind,
    Campaign,
    CampaignEvent,
    CampaignMember,
    CampaignPart,
    CampaignRun,
    CampaignStatus,
    PartState,
    ScheduleKind,
)

log = logging.getLogger(__name__)

LAUNCH_TASK = "campaigns.launch"


class CampaignError(ValueError):
    pass


def record_event(campaign: Campaign, user, action: str, detail: str = "") -> None:  # noqa: ANN001
    CampaignEvent.objects.create(campaign=campaign, user=user if getattr(user, "pk", None) else None, action=action,
                                 detail=detail[:300])


# --- audience ---

def estimate_audience(campaign: Campaign) -> int:
    """Users targeted before preferences (an index count; the planner's estimate for all users)."""
    kind = campaign.audience_kind
    if kind == AudienceKind.TOPIC:
        return Follow.objects.filter(topic_id=campaign.topic_id).count() if campaign.topic_id else 0
    if kind == AudienceKind.SEGMENT:
        return campaign.segment.recipients().count() if campaign.segment_id else 0
    if kind == AudienceKind.UPLOAD:
        return CampaignMember.objects.filter(campaign=campaign).count() if campaign.pk else 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = 'audience_recipient'")
        estimate = cursor.fetchone()[0]
    return estimate or Recipient.objects.filter(is_active=True).count()


def cached_estimate(campaign: Campaign, seconds: int = 60) -> int:
    """estimate_audience for list pages: a 2.5M-follower topic costs ~0.2 s to count, so once a minute."""
    key = f"campaign-estimate:{campaign.audience_kind}:{campaign.topic_id}:{campaign.segment_id}:{campaign.pk}"
    value = cache.get(key)
    if value is None:
        value = estimate_audience(campaign)
        cache.set(key, value, seconds)
    return value


# --- scheduling ---

def parse_crontab(expression: str, zone: str) -> Crontab:
    fields = expression.split()
    if len(fields) != 5:
        raise CampaignError('a crontab has 5 fields: "minute hour day-of-month month day-of-week"')
    try:
        schedule = Crontab(minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3],
                           day_of_week=fields[4])
        schedule.tz = ZoneInfo(zone or "UTC")
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise CampaignError(f"invalid crontab {expression!r}: {exc}") from None
    return schedule


def schedule(campaign: Campaign, user) -> None:  # noqa: ANN001
    """Hand the campaign to celery beat (django-celery-beat's database scheduler)."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED):
        raise CampaignError(f"a {campaign.status} campaign cannot be scheduled")
    if campaign.schedule_kind == ScheduleKind.NOW:
        raise CampaignError("this campaign is sent when launched: use Launch")
    problems = template_checks.context_errors(campaign.template, campaign.context or {}, campaign.channels)
    if problems:
        raise CampaignError("; ".join(problems))
    options = {"task": LAUNCH_TASK, "args": json.dumps([campaign.pk]), "queue": "dispatch", "enabled": True}
    if campaign.schedule_kind == ScheduleKind.AT:
        if not campaign.send_at or campaign.send_at <= timezone.now():
            raise CampaignError("the send time is in the past")
        clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=campaign.send_at)
        options |= {"clocked": clocked, "crontab": None, "one_off": True}
    elif campaign.schedule_kind == ScheduleKind.LOCAL:
        if not campaign.local_date or not campaign.local_time:
            raise CampaignError("a local-time send needs its day and time of day")
        # beat launches when the first timezone's time comes; each wave is then released at its own
        clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=max(parts.earliest_due(campaign),
                                                                            timezone.now()))
        options |= {"clocked": clocked, "crontab": None, "one_off": True}
    else:
        fields = campaign.crontab.split()
        parse_crontab(campaign.crontab, campaign.crontab_timezone)
        cron, _ = CrontabSchedule.objects.get_or_create(
            minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3], day_of_week=fields[4],
            timezone=campaign.crontab_timezone or "UTC")
        options |= {"crontab": cron, "clocked": None, "one_off": False}
    with transaction.atomic():
        task, _ = PeriodicTask.objects.update_or_create(name=f"campaign {campaign.pk}", defaults=options)
        Campaign.objects.filter(pk=campaign.pk).update(periodic_task=task, status=CampaignStatus.SCHEDULED)
        when = campaign.send_at or f"{campaign.crontab} {campaign.crontab_timezone}"
        if campaign.schedule_kind == ScheduleKind.LOCAL:
            when = f"{campaign.local_date} {campaign.local_time} in each recipient's timezone"
        record_event(campaign, user, "scheduled", str(when))


def unschedule(campaign: Campaign, user) -> bool:  # noqa: ANN001
    """A scheduled campaign back to draft, its beat entry disabled; False if it was not scheduled."""
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.DRAFT):
            return False
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=False)
        record_event(campaign, user, "unscheduled", "changed after it was scheduled")
    campaign.status = CampaignStatus.DRAFT
    return True


def occurrence(campaign: Campaign, now: datetime) -> str:
    """Which occurrence a launch at `now` is: "once", or the scheduled minute of a recurring campaign.

    Two beats, a beat restart or a retried launch task all name the same occurrence, so it launches once.
    """
    if campaign.schedule_kind != ScheduleKind.RECURRING:
        return "once"
    cron = parse_crontab(campaign.crontab, campaign.crontab_timezone)
    local = now.astimezone(cron.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)  # a beat may fire early
    for _ in range(8 * 24 * 60):
        weekday = (local.weekday() + 1) % 7  # celery: 0 is Sunday
        if (local.minute in cron.minute and local.hour in cron.hour and local.day in cron.day_of_month
                and local.month in cron.month_of_year and weekday in cron.day_of_week):
            return local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%MZ")
        local -= timedelta(minutes=1)
    return now.strftime("%Y-%m-%dT%H:%MZ")


# --- launching and controlling ---

def launch(campaign_id: int, user=None, now: datetime | None = None):  # noqa: ANN001, ANN201
    """Start this occurrence of the campaign, once: returns its notification (None if not launchable)."""
    from apps.delivery.service import Source, notify

    campaign = Campaign.objects.select_related("category", "topic").filter(pk=campaign_id).first()
    if campaign is None:  # deleted: its beat entry must not fire again
        PeriodicTask.objects.filter(name=f"campaign {campaign_id}").update(enabled=False)
    if campaign is None or campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.PAUSED,
                                               CampaignStatus.COMPLETED):
        log.info("campaign %s not launched: %s", campaign_id, campaign.status if campaign else "unknown")
        return None
    which = occurrence(campaign, now or timezone.now())
    if parts.is_split(campaign):
        run = parts.launch_split(campaign, which, user, now or timezone.now())
        first = run.parts.exclude(notification=None).select_related("notification").first()
        return first.notification if first else None  # a local-time run's first wave may still wait
    notification = notify(category=campaign.category.slug, audience=campaign.audience(), channels=campaign.channels,
                          context=campaign.context or {}, template_id=campaign.template_id,
                          idempotency_key=f"campaign:{campaign.pk}:{which}", source=Source.CAMPAIGN)
    try:
        with transaction.atomic():
            CampaignRun.objects.create(campaign=campaign, occurrence=which, notification=notification)
            Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.RUNNING)
            record_event(campaign, user, "launched", f"occurrence {which}, notification {notification.pk}")
    except IntegrityError:  # this occurrence was launched already: same notification, nothing new
        pass
    return notification


def _active_notification_ids(campaign: Campaign) -> list[int]:
    split = CampaignPart.objects.filter(run__campaign=campaign).exclude(notification__status="completed")
    return list(campaign.runs.exclude(notification__status="completed").exclude(notification=None)
                .values_list("notification_id", flat=True)) + list(
        split.exclude(notification=None).values_list("notification_id", flat=True))


def pause(campaign: Campaign, user) -> None:  # noqa: ANN001
    from apps.delivery import service as delivery

    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED):
        raise CampaignError(f"a {campaign.status} campaign cannot be paused")
    for notification_id in _active_notification_ids(campaign):
        delivery.pause(notification_id)
    PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=False)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
    record_event(campaign, user, "paused")


def resume(campaign: Campaign, user) -> int:  # noqa: ANN001
    """Run again from where it stopped; returns how many parked batches were handed back."""
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignError(f"a {campaign.status} campaign is not paused")
    handed = _release(campaign, "")
    # running first, so a send that completes from now on completes the campaign (on_notification_completed)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.RUNNING)
    running = bool(_active_notification_ids(campaign)) or CampaignPart.objects.filter(
        run__campaign=campaign, state=PartState.PENDING).exists()  # local-time waves still to come
    if running:
        final = CampaignStatus.RUNNING
    elif campaign.runs.exists() and campaign.schedule_kind != ScheduleKind.RECURRING:
        final = CampaignStatus.COMPLETED  # its send finished while it was paused (batches in flight finish)
    else:
        final = CampaignStatus.SCHEDULED  # beat's fire (or a recurring campaign's next one) is still to come
    if final != CampaignStatus.RUNNING:
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(status=final)
    if final != CampaignStatus.COMPLETED:
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=True)
    record_event(campaign, user, "resumed", f"{handed} batch(es) handed back")
    return handed


def cancel(campaign: Campaign, user) -> None:  # noqa: ANN001
    from apps.delivery import service as delivery

    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
        raise CampaignError(f"a {campaign.status} campaign cannot be cancelled")
    _release(campaign, delivery.CANCELLED)
    CampaignPart.objects.filter(run__campaign=campaign, state=PartState.PENDING).update(state=PartState.CANCELLED)
    PeriodicTask.objects.filter(pk=campaign.periodic_task_id).update(enabled=False)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CANCELLED)
    record_event(campaign, user, "cancelled")


def _release(campaign: Campaign, new_state: str) -> int:
    """Set the run state of the campaign's notifications and hand their parked batches back to the senders."""
    from apps.delivery import service as delivery

    return sum(delivery.release(notification_id, new_state) for notification_id in _active_notification_ids(campaign))


def on_notification_completed(sender, notification_id: int, **kwargs) -> None:  # noqa: ANN001, ANN003
    run = CampaignRun.objects.select_related("campaign").filter(notification_id=notification_id).first()
    part = None if run else CampaignPart.objects.select_related("run__campaign").filter(
        notification_id=notification_id).first()
    if part is not None:
        run = part.run
        if not parts.run_finished(run):  # other waves or variants still to go
            record_event(run.campaign, None, "part completed", f"{part}, notification {notification_id}")
            return
    if run is None:
        return
    campaign = run.campaign
    if campaign.status == CampaignStatus.RUNNING:
        final = CampaignStatus.SCHEDULED if campaign.schedule_kind == ScheduleKind.RECURRING \
            else CampaignStatus.COMPLETED
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(status=final)
    record_event(campaign, None, "completed", f"notification {notification_id}")


def on_campaign_deleted(sender, instance: Campaign, **kwargs) -> None:  # noqa: ANN001, ANN003
    """A deleted campaign's beat entry is disabled, so beat never fires a launch for nothing."""
    mine = Q(name=f"campaign {instance.pk}") | Q(pk=instance.periodic_task_id)
    PeriodicTask.objects.filter(mine).update(enabled=False)
