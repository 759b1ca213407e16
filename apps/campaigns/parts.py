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
from django.db import IntegrityError, transaction
from django.db.models import Count

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
    from apps.delivery import clock
    from apps.delivery.models import Source
    from apps.delivery.service import notify

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
        notification = notify(category=campaign.category.slug, audience=part_audience(campaign, part),
                              channels=campaign.channels, context=campaign.context or {},
                              template_id=part.template_id, source=Source.CAMPAIGN,
                              idempotency_key=part_key(campaign.pk, run.occurrence, part))
        CampaignPart.objects.filter(pk=part.pk, state=PartState.PENDING).update(
            state=PartState.RELEASED, notification=notification)
        log.info("campaign %s: released %s, notification %s", campaign.pk, part, notification.pk)
    upcoming = pending.order_by("due_at").values_list("due_at", flat=True).first()
    if upcoming is None:
        return None
    return max(0.0, (upcoming - now).total_seconds())


def run_finished(run: CampaignRun) -> bool:
    """Every part released (or cancelled) and every released part's notification complete."""
    parts = CampaignPart.objects.filter(run=run)
    return not parts.filter(state=PartState.PENDING).exists() and not parts.filter(
        state=PartState.RELEASED).exclude(notification__status="completed").exists()
