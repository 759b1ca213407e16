"""The beat scenario: two beat processes (a double deployment), one killed and restarted around the fire
time of a scheduled campaign; the occurrence must launch once."""

from __future__ import annotations

import signal
import sys
import time
import uuid
from datetime import timedelta

from django.utils import timezone

from apps.delivery.models import Notification

from .run_state import Run, completed, count, wait_until


def beat(run: Run) -> dict:
    """Two beat processes (a double deployment), one of them killed and restarted around the fire time."""
    from apps.audience.models import Topic
    from apps.campaigns import service
    from apps.campaigns.models import Campaign, CampaignRun
    from apps.content.models import Template
    from apps.preferences.models import Category

    run.provider.reset(latency_ms=run.latency_ms)
    template = Template.objects.create(name=f"chaos-{run.run_id}", push_title="Kick-off in 10 minutes")
    campaign = Campaign.objects.create(
        name=f"chaos-{run.run_id}", category=Category.objects.get(slug="goal-alerts"), template=template,
        channels=["push"], audience_kind="topic", topic=Topic.objects.get(slug=run.topic), schedule_kind="at",
        send_at=timezone.now() + timedelta(seconds=5))
    service.schedule(campaign, None)
    for index in range(2):
        _start_beat(run, index)
    time.sleep(max((campaign.send_at - timezone.now()).total_seconds() - run.rng.uniform(0, 1.5), 0))
    run.stack.kill("beat-0", signal.SIGKILL)
    time.sleep(0.5)
    _start_beat(run, 0)
    launched = wait_until(run, CampaignRun.objects.filter(campaign=campaign, notification__isnull=False).exists,
                          "beat to launch the campaign")
    notification_ids = list(Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                            .values_list("pk", flat=True))
    run.notification_ids += notification_ids
    timed_out = not (launched and wait_until(run, lambda: all(completed(n) for n in notification_ids),
                                             "the campaign to complete"))
    time.sleep(3)  # room for a second fire
    for index in range(2):
        run.stack.kill(f"beat-{index}", signal.SIGTERM)
    runs = CampaignRun.objects.filter(campaign=campaign).count()
    notification_ids = list(Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                            .values_list("pk", flat=True))
    report = count(run, notification_ids)
    if runs == 0:
        report["missing"] += run.users  # the occurrence never launched: nobody was reached
    run.notification_ids += [n for n in notification_ids if n not in run.notification_ids]
    return report | {"occurrences": 1, "launches": runs, "notifications": len(notification_ids),
                     "timed_out": timed_out, "campaign_id": campaign.pk}


def _start_beat(run: Run, index: int) -> None:
    run.stack.spawn(f"beat-{index}", [sys.executable, "-m", "celery", "-A", "notifications_project", "beat",
                                      "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1",
                                      "-s", str(run.redis.directory / f"beat-{index}-{uuid.uuid4().hex[:6]}"),
                                      "-l", "info"])
