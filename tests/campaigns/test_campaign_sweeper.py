"""Local-time waves whose release met an outage: the beat sweeper (campaigns.sweep_parts, every minute)
releases them, each exactly once, even racing the normal release; with nothing to do it is one indexed query."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from apps.audience.models import Topic
from apps.campaigns import parts, service
from apps.campaigns.models import Campaign, CampaignEvent, CampaignPart, CampaignStatus, PartState
from apps.core import clock
from apps.delivery import publisher
from apps.delivery.models import Notification
from apps.streaming.local_broker import free_port
from tests.campaigns.test_campaign_permissions import actor
from tests.campaigns.test_campaigns import make_template
from tests.conftest import wait_until
from tests.delivery.test_pipeline import completed, expected_counts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moving_clock():
    clock.reset()
    yield clock
    clock.reset()


def local_campaign(moving_clock, name: str) -> Campaign:  # noqa: ANN001
    """A 09:00-local send tomorrow, with the pipeline's clock at 07:30 UTC: two waves are due at launch
    (Sydney, Tokyo), four later (Madrid at 08:00 UTC, London and UTC at 09:00, New York at 14:00)."""
    from apps.preferences.models import Category

    day = (clock.now_datetime() + timedelta(days=1)).date()
    moving_clock.advance(datetime.combine(day, datetime.min.time(), UTC).timestamp() + 7.5 * 3600 - clock.now())
    return Campaign.objects.create(name=name, category=Category.objects.get(slug="goal-alerts"),
                                   template=make_template(push_title="Good morning"), channels=["push"],
                                   audience_kind="topic", topic=Topic.objects.get(slug="test-fans"),
                                   schedule_kind="local", local_date=day,
                                   local_time=datetime.strptime("09:00", "%H:%M").time())


def released_once(campaign: Campaign) -> list[CampaignPart]:
    """Every part released, with one notification and one audit line each."""
    found = list(CampaignPart.objects.filter(run__campaign=campaign))
    assert found and all(p.state == PartState.RELEASED and p.notification_id for p in found), found
    lines = list(CampaignEvent.objects.filter(campaign=campaign, action="wave released").values_list("detail",
                                                                                                    flat=True))
    assert sorted(lines) == sorted(f"{p}, notification {p.notification_id}" for p in found), lines
    keys = Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
    assert keys.count() == len(found) == len({p.notification_id for p in found})
    return found


def delivered_once_each(campaign: Campaign, provider) -> None:  # noqa: ANN001
    found = released_once(campaign)
    done = [completed(p.notification_id) for p in found]
    assert sum(n.targeted for n in done) == 3000
    reachable, _ = expected_counts("test-fans")
    stats = provider.stats()
    assert sum(n.sent for n in done) == reachable == stats["unique"] and stats["duplicates"] == 0
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=15,
               message="the campaign to complete after its last wave")


def start_beat(stack, directory, sweep_seconds: int) -> None:  # noqa: ANN001
    """A real beat on the database scheduler, with the sweeper's entry from settings at this interval."""
    stack.env["NOTIFY_CAMPAIGN_SWEEP_SECONDS"] = str(sweep_seconds)
    try:
        stack.spawn("beat", [sys.executable, "-m", "celery", "-A", "notifications_project", "beat", "-S",
                             "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1",
                             "-s", str(directory / "beat-schedule"), "-l", "info"])
    finally:
        del stack.env["NOTIFY_CAMPAIGN_SWEEP_SECONDS"]


def drop_dead_producer() -> None:
    """The producer made while Kafka was away: its message never left; the next release publishes again."""
    dead, publisher._producer = publisher._producer, None
    if dead is not None:
        dead._producer.purge()
        dead._producer.flush(0)


def test_the_sweeper_is_a_beat_entry_and_one_indexed_query_when_nothing_waits(db):
    assert settings.CELERY_BEAT_SCHEDULE["campaigns-sweep-parts"] == {  # beat's database scheduler installs it
        "task": parts.SWEEP_TASK, "schedule": 60.0, "options": {"queue": "dispatch"}}
    with CaptureQueriesContext(connection) as queries:
        assert parts.sweep() == 0
    assert len(queries) == 1, [q["sql"] for q in queries]
    with connection.cursor() as cursor:  # the planner can answer it from the pending-parts index alone
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "campaign_part_pending_due" in plan, plan


def test_sweeper_and_release_racing_release_each_wave_once(stack, provider, fans, moving_clock):
    campaign = local_campaign(moving_clock, "race")
    service.launch(campaign.pk)  # the due waves go now; the chain in the dispatch worker looks every second
    run_id = CampaignPart.objects.filter(run__campaign=campaign).values_list("run_id", flat=True).first()
    last_due = max(CampaignPart.objects.filter(run__campaign=campaign).values_list("due_at", flat=True))
    waiting = CampaignPart.objects.filter(run__campaign=campaign, state=PartState.PENDING).count()
    assert waiting == 4
    racers = [lambda: parts.release_due(run_id), lambda: parts.sweep()] * 3
    start, errors = threading.Barrier(len(racers) + 1), []

    def race(release) -> None:  # noqa: ANN001
        try:
            start.wait()
            release()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for thread in threads:
        thread.start()
    moving_clock.advance((last_due - clock.now_datetime()).total_seconds() + 60)  # every wave is due now
    start.wait()  # six releasers here and the worker's chain, all at once
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    delivered_once_each(campaign, provider)


def test_waves_whose_release_met_a_broker_outage_are_released_by_the_beat_sweeper(stack, provider, fans,
                                                                                   moving_clock, tmp_path):
    from apps.campaigns.tasks import sweep_parts

    campaign = local_campaign(moving_clock, "outage")
    sender = actor("Sender")
    broken = publisher.producer()
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}"):  # Kafka away, for this process
        publisher._producer = None
        answer = sender.post("/admin/campaigns/campaign/", {"action": "launch_campaigns",
                                                           "_selected_action": [campaign.pk]}, follow=True)
        assert "the launch met an outage (BrokerUnavailable)" in answer.content.decode()
        drop_dead_producer()
        assert sweep_parts.apply().result == 0  # a sweep during the outage meets it too, and waits
        drop_dead_producer()
    publisher._producer = broken
    found = list(CampaignPart.objects.filter(run__campaign=campaign))
    assert len(found) == 6 and all(p.state == PartState.PENDING and p.claimed_until is None for p in found)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING
    time.sleep(3)  # the normal path never armed its chain: the due waves wait
    assert CampaignPart.objects.filter(run__campaign=campaign, state=PartState.PENDING).count() == 6
    assert provider.stats()["unique"] == 0

    start_beat(stack, tmp_path, sweep_seconds=1)
    wait_until(lambda: PeriodicTask.objects.filter(name="campaigns-sweep-parts", task=parts.SWEEP_TASK,
                                                   interval__every=1, queue="dispatch").exists(),
               timeout=30, message="beat to install the sweeper's entry from settings")
    try:
        now = clock.now_datetime()
        due = [p for p in found if p.due_at <= now]
        assert len(due) == 2
        for part in due:
            wait_until(lambda p=part: CampaignPart.objects.filter(pk=p.pk, state=PartState.RELEASED).exists(),
                       timeout=30, message=f"the sweeper to release {part.timezone}")
        for when in sorted({p.due_at for p in found if p.due_at > now}):  # no chain: the sweeper takes them too
            moving_clock.advance((when - clock.now_datetime()).total_seconds() + 1)
            for part in (p for p in found if p.due_at == when):
                wait_until(lambda p=part: CampaignPart.objects.filter(pk=p.pk, state=PartState.RELEASED).exists(),
                           timeout=30, message=f"the sweeper to release {part.timezone}")
        delivered_once_each(campaign, provider)
        time.sleep(3)  # more sweeps: nothing is released again
        released_once(campaign)
    finally:
        stack.kill("beat", signal.SIGTERM)


@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_a_wave_released_as_its_campaign_is_cancelled_or_paused_is_stopped_too(action, broker, fans, moving_clock,
                                                                               monkeypatch):
    from apps.delivery import control
    from apps.delivery import service as delivery_service

    campaign = local_campaign(moving_clock, action)
    real_notify = delivery_service.notify
    monkeypatch.setattr(parts, "follow_up", lambda run_id: None)  # the launch plans the waves, releases none
    service.launch(campaign.pk)
    part = CampaignPart.objects.filter(run__campaign=campaign, state=PartState.PENDING).earliest("due_at")

    def notify_then_act(**kwargs) -> Notification:  # the Sender clicks just as the wave's notification is made
        made = real_notify(**kwargs)
        getattr(service, action)(Campaign.objects.get(pk=campaign.pk), None)
        return made

    monkeypatch.setattr(delivery_service, "notify", notify_then_act)
    assert parts.release_part(part.run, part, clock.now_datetime()) == (action == "pause")
    part.refresh_from_db()
    assert part.notification_id, "the notification made is kept on the part, so pause, resume and cancel reach it"
    if action == "cancel":
        assert part.state == PartState.CANCELLED and control.state(part.notification_id) == control.CANCELLED
    else:
        assert part.state == PartState.RELEASED and control.state(part.notification_id) == control.PAUSED
