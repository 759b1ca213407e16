"""Runs split into several notifications: local-time waves (one per recipient timezone, released when
the campaign's time of day comes there) and A/B variants (a share of the audience by id % 100 each).

A split run is still one CampaignRun (one launch per occurrence); its CampaignParts are planned in the
same transaction. Each part's notification has the audience {"slice": {"of": ..., "timezones": [...],
"share": [from, to]}}, filtered in SQL by the dispatcher, and the idempotency key
campaign:<id>:<occurrence>:<timezone>[:v<variant>], so a retried release makes each part once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Q

from apps.audience.models import Recipient

from .models import (
    AudienceKind,
    Campaign,
    CampaignPart,
    CampaignRun,
    CampaignStatus,
    CampaignVariant,
    PartState,
    ScheduleKind,
)

log = logging.getLogger(__name__)
RELEASE_TASK = "campaigns.release_parts"
SWEEP_TASK = "campaigns.sweep_parts"
CLAIM_LEASE_SECONDS = 300  # longer than a release takes (a publish waits 10 s at most for the broker)
UTC = "UTC"


def is_split(campaign: Campaign) -> bool:
    return campaign.schedule_kind == ScheduleKind.LOCAL or campaign.variants.exists()


def _audience_recipients(campaign: Campaign):  # noqa: ANN202
    if campaign.audience_kind == AudienceKind.TOPIC:
        return Recipient.objects.filter(follows__topic_id=campaign.topic_id)
    if campaign.audience_kind == AudienceKind.SEGMENT:
        return campaign.segment.recipients()
    if campaign.audience_kind == AudienceKind.UPLOAD:
        return Recipient.objects.filter(pk__in=campaign.members.values("recipient_id"))
    return Recipient.objects.all()


def _zone_name(value: str) -> str:
    """The wave a recipient's timezone value belongs to: an unknown name or "" is UTC."""
    if not value:
        return UTC
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
    return value


def timezone_groups(campaign: Campaign) -> dict[str, list[str]]:
    """Wave timezone -> the Recipient.timezone values it takes: one GROUP BY over the audience."""
    groups: dict[str, list[str]] = {}
    rows = _audience_recipients(campaign).order_by().values_list("timezone").annotate(n=Count("id"))
    for value, _ in rows:
        groups.setdefault(_zone_name(value), []).append(value)
    return groups


def local_due(campaign: Campaign, zone: str) -> datetime:
    """When the campaign's day and time of day come in `zone`, as an aware UTC instant."""
    local = datetime.combine(campaign.local_date, campaign.local_time, tzinfo=ZoneInfo(zone))
    return local.astimezone(ZoneInfo(UTC))


def earliest_due(campaign: Campaign) -> datetime:
    """The first moment any timezone reaches the campaign's time (UTC+14 is the earliest on Earth)."""
    return local_due(campaign, UTC) - timedelta(hours=14)


def variant_shares(variants: list[CampaignVariant]) -> list[tuple[CampaignVariant, list[int]]]:
    """Each variant's [from, to) of id % 100, in the variants' order."""
    shares, start = [], 0
    for variant in variants:
        shares.append((variant, [start, start + variant.share]))
        start += variant.share
    return shares


def plan(campaign: Campaign, run: CampaignRun, now: datetime) -> list[CampaignPart]:
    if campaign.schedule_kind == ScheduleKind.LOCAL:
        waves = [(zone, values, local_due(campaign, zone)) for zone, values in timezone_groups(campaign).items()]
    else:
        waves = [("", [], now)]
    arms = variant_shares(list(campaign.variants.select_related("template"))) or [(None, [])]
    return [CampaignPart(run=run, timezone=zone, zones=values, variant=variant, share=share, due_at=due,
                         template_id=variant.template_id if variant else campaign.template_id)
            for zone, values, due in waves for variant, share in arms]


def launch_split(campaign: Campaign, which: str, user, now: datetime) -> CampaignRun:  # noqa: ANN001
    """Plan this occurrence's parts once, release those already due, and leave the rest to the release task."""
    from .service import record_event

    try:
        with transaction.atomic():
            run = CampaignRun.objects.create(campaign=campaign, occurrence=which)
            parts = CampaignPart.objects.bulk_create(plan(campaign, run, now))
            # nobody in the audience: nothing will complete, so the campaign is done now
            final = CampaignStatus.RUNNING if parts else CampaignStatus.COMPLETED
            Campaign.objects.filter(pk=campaign.pk).update(status=final)
            record_event(campaign, user, "launched", f"occurrence {which}, {len(parts)} part(s)")
    except IntegrityError:  # this occurrence was launched already: its parts stand
        run = CampaignRun.objects.get(campaign=campaign, occurrence=which)
    follow_up(run.pk)
    return run


def follow_up(run_id: int) -> None:
    """Release what is due now and, if parts wait, look again when the next is due (at most a poll later)."""
    from .tasks import release_parts

    wait = release_due(run_id)
    if wait is not None:
        release_parts.apply_async(args=[run_id], countdown=poll_delay(wait), queue="dispatch")


def poll_delay(wait: float) -> float:
    # A Celery eta hours ahead would be redelivered after the broker's visibility timeout, and would not
    # follow the tests' controllable clock: so look again at most a poll interval later.
    cap = 1.0 if settings.CONTROLLABLE_CLOCK else 60.0
    return max(0.0, min(wait, cap))


def part_key(campaign_id: int, occurrence: str, part: CampaignPart) -> str:
    key = f"campaign:{campaign_id}:{occurrence}:{part.timezone or 'all'}"
    return f"{key}:v{part.variant_id}" if part.variant_id else key


def part_audience(campaign: Campaign, part: CampaignPart) -> dict:
    spec: dict = {"of": campaign.audience()}
    if part.timezone:
        spec["timezones"] = part.zones
    if part.share and part.share != [0, 100]:
        spec["share"] = part.share
    return {"slice": spec}


def release_due(run_id: int) -> float | None:
    """Notify every due part of the run; the seconds until the next part is due, or None if none waits."""
    from apps.core import clock

    run = CampaignRun.objects.select_related("campaign__category", "campaign__topic").get(pk=run_id)
    campaign = run.campaign
    pending = CampaignPart.objects.filter(run=run, state=PartState.PENDING)
    if campaign.status == CampaignStatus.CANCELLED:
        pending.update(state=PartState.CANCELLED)
        return None
    now = clock.now_datetime()
    if campaign.status == CampaignStatus.PAUSED:  # nothing is released while paused: look again later
        return 60.0 if pending.exists() else None
    for part in pending.filter(due_at__lte=now):
        release_part(run, part, now)
    upcoming = pending.order_by("due_at").values_list("due_at", flat=True).first()
    if upcoming is None:
        return None
    return max(0.0, (upcoming - now).total_seconds())


def _claim(part: CampaignPart, now: datetime) -> datetime | None:
    """Take the part for a lease (one UPDATE): the chain, the sweeper and a relaunch may race for it."""
    lease = now + timedelta(seconds=CLAIM_LEASE_SECONDS)
    free = Q(claimed_until=None) | Q(claimed_until__lt=now)
    won = CampaignPart.objects.filter(free, pk=part.pk, state=PartState.PENDING).update(claimed_until=lease)
    return lease if won else None


def release_part(run: CampaignRun, part: CampaignPart, now: datetime) -> bool:
    """Notify one due part, once: False if another releaser holds it or it was released meanwhile.

    The notification's idempotency key names the part, so even a releaser whose lease ran out makes
    the same notification; the PENDING -> RELEASED step (with its audit line) happens once."""
    from apps.delivery.service import Source, notify

    from .service import record_event

    lease = _claim(part, now)
    if lease is None:
        return False
    campaign = run.campaign
    try:
        notification = notify(category=campaign.category.slug, audience=part_audience(campaign, part),
                              channels=campaign.channels, context=campaign.context or {},
                              template_id=part.template_id, source=Source.CAMPAIGN,
                              idempotency_key=part_key(campaign.pk, run.occurrence, part))
    except Exception:
        try:  # let the next look (chain or sweeper) try at once; if the database is the outage, the lease ends
            CampaignPart.objects.filter(pk=part.pk, claimed_until=lease).update(claimed_until=None)
        except DatabaseError:
            pass
        raise
    with transaction.atomic():
        released = CampaignPart.objects.filter(pk=part.pk, state=PartState.PENDING).update(
            state=PartState.RELEASED, notification=notification, claimed_until=None)
        if released:
            record_event(campaign, None, "wave released", f"{part}, notification {notification.pk}")
    if not released:
        _stop_if_cancelled(part, notification.pk)
        return False
    log.info("campaign %s: released %s, notification %s", campaign.pk, part, notification.pk)
    if Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.PAUSED).exists():
        from apps.delivery import service as delivery  # paused while this part was being released: hold it too

        delivery.pause(notification.pk)
    return True


def _stop_if_cancelled(part: CampaignPart, notification_id: int) -> None:
    """The campaign was cancelled while this part was being notified: its notification stops too."""
    from apps.delivery import service as delivery

    if CampaignPart.objects.filter(pk=part.pk, state=PartState.CANCELLED, notification=None).update(
            notification_id=notification_id):
        delivery.release(notification_id, delivery.CANCELLED)


def overdue_runs(now: datetime) -> list[int]:
    """Runs of running campaigns with a part overdue by more than the chain's poll and free to take: one
    query on the pending-parts index, so a sweep with nothing to do costs next to nothing."""
    late = now - timedelta(seconds=sweep_grace())
    free = Q(claimed_until=None) | Q(claimed_until__lt=now)
    return list(CampaignPart.objects.filter(free, state=PartState.PENDING, due_at__lte=late,
                                            run__campaign__status=CampaignStatus.RUNNING)
                .order_by().values_list("run_id", flat=True).distinct())


def sweep_grace() -> float:
    """How late a wave may be before the sweeper takes it: the chain looks at least once a poll."""
    return 2.0 if settings.CONTROLLABLE_CLOCK else 120.0


def sweep(now: datetime | None = None) -> int:
    """Release the due parts whose release failed (an outage, a lost task): the parts released."""
    from apps.core import clock

    now = now or clock.now_datetime()
    released = 0
    for run_id in overdue_runs(now):
        run = CampaignRun.objects.select_related("campaign__category", "campaign__topic").get(pk=run_id)
        for part in CampaignPart.objects.filter(run=run, state=PartState.PENDING, due_at__lte=now):
            released += release_part(run, part, now)
    return released


def run_finished(run: CampaignRun) -> bool:
    """Every part released (or cancelled) and every released part's notification complete."""
    parts = CampaignPart.objects.filter(run=run)
    return not parts.filter(state=PartState.PENDING).exists() and not parts.filter(
        state=PartState.RELEASED).exclude(notification__status="completed").exists()
