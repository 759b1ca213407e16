"""The chaos scenarios. Each runs a goal-alert fan-out on the real stack while something breaks, waits
until the notification completes, and counts: every recipient must end sent (and the provider must
have received it), or skipped, failed or dead-lettered with a reason."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.delivery import progress, records
from apps.delivery.events import producer, publish_notification_event
from apps.delivery.models import DeadLetter, Delivery, DeliveryStatus, Notification
from apps.delivery.outages import OUTAGES, forget_broken_connections
from apps.delivery.processes import Stack
from apps.delivery.service import notify
from apps.preferences.models import Channel, Priority
from apps.providers.fake_server import FakeProviderControl, Faults
from apps.streaming.topics import DEFERRED, EVENTS, RETRY, channel_topic, topic_name

from .services import RedisServer, terminate_database_connections

# What a killed send child may resend at most: its provider calls in flight (each call's answers are
# journaled as they come, so only the calls nobody knows the outcome of are sent again).
SEND_BATCH = settings.PROVIDER_CALLS_IN_FLIGHT * settings.SEND_CHUNK_SIZE


@dataclass
class Run:
    stack: Stack
    redis: RedisServer
    provider: FakeProviderControl
    topic: str  # the audience: a topic with the run's N fans
    users: int
    run_id: str
    rng: random.Random
    timeout: float
    provider_timeout_s: float
    latency_ms: float
    log: Callable[[str], None]
    notification_ids: list[int] = field(default_factory=list)
    fake_ids: list[int] = field(default_factory=list)  # unknown notification ids used as poison


def _fan_out(run: Run, label: str) -> int:
    notification = notify(category="goal-alerts", audience={"topic": run.topic}, channels=["push"],
                          title="GOAL! {{ team }} 1-0", context={"team": "Home"},
                          idempotency_key=f"chaos-{run.run_id}-{label}")
    run.notification_ids.append(notification.pk)
    return notification.pk


def _patiently(read: Callable, default=None):  # noqa: ANN001, ANN202
    """Read through an outage this run caused: a dependency that is away reads as `default`."""
    try:
        return read()
    except OUTAGES:
        forget_broken_connections()
        return default


def _recorded(notification_id: int) -> int:
    state = _patiently(lambda: progress.read(notification_id), {})
    return int(sum(state.get(k, 0) for k in progress.TERMINAL))


def _wait(run: Run, predicate: Callable[[], bool], what: str) -> bool:
    deadline = time.monotonic() + run.timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    run.log(f"timed out waiting for {what}")
    return False


def _completed(notification_id: int) -> bool:
    return bool(_patiently(lambda: Notification.objects.filter(pk=notification_id, status="completed").exists()))


def _count(run: Run, notification_ids: list[int]) -> dict:
    """Recipients, missing, duplicates and dead-lettered, from PostgreSQL and the provider's own counts."""
    time.sleep(2)  # room for a late resend to reach the provider, so it is counted
    stats = run.provider.stats()
    targeted = terminal = sent = dead = without_reason = 0
    for notification_id in notification_ids:
        targeted += Notification.objects.get(pk=notification_id).targeted or 0
        counts = records.count_by_status(notification_id)
        terminal += sum(counts.values())
        sent += counts["sent"]
        dead += counts["dead_lettered"]
        low, high = Delivery.key_range(notification_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM delivery_delivery WHERE id BETWEEN %s AND %s AND status <> %s "
                           "AND reason = ''", [low, high, int(DeliveryStatus.SENT)])
            without_reason += cursor.fetchone()[0]
    # Missing: no final state, a final state without a reason, or recorded as sent but never received.
    missing = max(targeted - terminal, 0) + without_reason + max(sent - stats["unique"], 0)
    return {"recipients": targeted, "missing": missing, "duplicates": stats["duplicates"], "dead_lettered": dead,
            "sent": sent, "skipped_or_failed": terminal - sent - dead}


def crash(run: Run) -> dict:
    """kill -9 the dispatcher mid-dispatch, a send worker's child and a send bridge, at random points."""
    run.provider.reset(latency_ms=run.latency_ms)
    notification_id = _fan_out(run, "crash")
    kills = []
    _wait(run, lambda: "t_dispatch_start" in _patiently(lambda: progress.read(notification_id), {}), "dispatch")
    time.sleep(run.rng.uniform(0, 0.01 + run.users / 1_000_000))  # dispatch streams ~1M recipients a second
    mid_dispatch = "t_dispatch_end" not in progress.read(notification_id)
    kills.append({"dispatcher": len(_kill_children(run.stack, "worker-dispatch")), "mid_dispatch": mid_dispatch})
    at = int(run.users * run.rng.uniform(0.05, 0.3))
    _wait(run, lambda: _recorded(notification_id) >= at, f"{at} recorded")
    children = _kill_children(run.stack, "worker-send-normal-0", one=run.rng)
    kills.append({"send_worker_child": len(children), "at_recorded": at})
    at = int(run.users * run.rng.uniform(0.3, 0.6))
    _wait(run, lambda: _recorded(notification_id) >= at, f"{at} recorded")
    run.stack.kill("bridge-send-normal-0", signal.SIGKILL)
    time.sleep(1)
    run.stack.start_bridge("bridge-send-normal-0", "send", "normal")
    kills.append({"send_bridge": 1, "at_recorded": at})
    timed_out = not _wait(run, lambda: _completed(notification_id), "the notification to complete")
    report = _count(run, [notification_id])
    # Only a killed send child can have called the provider without recording it: one batch each.
    report |= {"kills": kills, "duplicate_bound": SEND_BATCH * len(children), "timed_out": timed_out}
    return report


def _kill_children(stack: Stack, name: str, one: random.Random | None = None) -> list[int]:
    """kill -9 the pool children of a Celery worker (or one of them, chosen by `one`); the parent replaces them."""
    parent = stack.processes[name].pid
    try:
        children = [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except OSError:
        return []
    if one and children:
        children = [one.choice(children)]
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return children


def provider_faults(run: Run) -> dict:
    """5xx, 429 with Retry-After, timeouts, connection resets, slow answers, invalid and stuck tokens."""
    faults = Faults(fail_5xx=0.1, fail_429=0.1, fail_timeout=0.05, fail_reset=0.1, slow=0.1, slow_ms=300,
                    fail_invalid=0.002, fail_stuck=0.001, retry_after_s=1.0,
                    timeout_hold_s=run.provider_timeout_s + 1.0)
    run.provider.reset(faults, latency_ms=run.latency_ms)
    notification_id = _fan_out(run, "faults")
    timed_out = not _wait(run, lambda: _completed(notification_id), "the notification to complete")
    report = _count(run, [notification_id])
    reasons = sorted(set(Delivery.of_notification(notification_id).exclude(status=DeliveryStatus.SENT)
                         .exclude(status=DeliveryStatus.SKIPPED).values_list("reason", flat=True)))
    injected = run.provider.stats()["injected"]
    return report | {"injected": injected, "failure_reasons": reasons[:5], "timed_out": timed_out}


def _poison_messages(run: Run) -> list[tuple[str, bytes]]:
    """Bad JSON, a wrong schema, a huge message and unknown ids, on every topic the bridges consume."""
    unknown = 9_000_000_000 + run.rng.randrange(1_000_000_000)
    run.fake_ids.append(unknown)
    huge_event = {"idempotency_key": f"chaos-{run.run_id}-huge", "category": "goal-alerts",
                  "audience": {"topic": run.topic}, "channels": ["push"], "title": "GOAL", "context": {
                      "pad": "x" * 300_000}}
    messages = [(topic_name(EVENTS), body) for body in (
        b"{not json", json.dumps({"category": "goal-alerts"}).encode(), json.dumps(huge_event).encode(),
        json.dumps({"notification_id": unknown}).encode())]

    def batches(topic: str, channel: str, priority: str, **fields) -> None:  # noqa: ANN003
        base = {"n": unknown, "c": channel, "p": priority, "b": f"{channel}:1:{uuid.uuid4().hex[:6]}"} | fields
        for body in (b"\xff\xfe not json", json.dumps({"n": "x", "r": "everyone"}).encode(),
                     json.dumps(base | {"r": list(range(1, 60_001))}).encode(), json.dumps(base | {"r": [1]}).encode()):
            messages.append((topic, body))

    for channel in Channel.values:
        for priority in Priority.values:
            batches(channel_topic(channel, priority), channel, priority)
    batches(topic_name(RETRY), "push", "normal", a=2)
    batches(topic_name(DEFERRED), "push", "normal", a=1, d="throttled")
    return messages


def poison(run: Run) -> dict:
    """Poison on every topic while a fan-out runs: each goes to the dead-letter topic, once."""
    run.provider.reset(latency_ms=run.latency_ms)
    started = timezone.now() - timedelta(seconds=1)
    notification_id = _fan_out(run, "poison")
    messages = _poison_messages(run)
    for topic, body in messages:
        producer().produce(topic, body)
    producer().flush(30)
    # The platform's own (signed) event for a notification that does not exist: the dispatcher dead-letters it.
    publish_notification_event(run.fake_ids[-1])
    messages.append((topic_name(EVENTS), b"signed event of an unknown notification"))
    prefix = topic_name("")

    def poison_letters():  # noqa: ANN202
        return DeadLetter.objects.filter(Q(created_at__gte=started, topic__startswith=prefix)
                                         | Q(notification_id__in=run.fake_ids))

    def dead_letters() -> int:
        return poison_letters().count()

    _wait(run, lambda: dead_letters() >= len(messages), f"{len(messages)} dead letters")
    timed_out = not _wait(run, lambda: _completed(notification_id), "the notification to complete")
    time.sleep(3)  # a message that looped would be dead-lettered again meanwhile
    report = _count(run, [notification_id])
    letters = dead_letters()
    report["missing"] += max(len(messages) - letters, 0)
    reasons = Counter(reason[:60] for reason in poison_letters().values_list("reason", flat=True))
    return report | {"poison_messages": len(messages), "poison_dead_lettered": letters, "reasons": dict(reasons),
                     "looped": max(letters - len(messages), 0), "timed_out": timed_out}


def dependency_restarts(run: Run) -> dict:
    """Redis restarted mid-run (SHUTDOWN, 2 s away, back with its AOF); PostgreSQL connections terminated."""
    run.provider.reset(latency_ms=max(run.latency_ms, 20))
    notification_id = _fan_out(run, "restarts")
    at = int(run.users * run.rng.uniform(0.1, 0.3))
    _wait(run, lambda: _recorded(notification_id) >= at, f"{at} recorded")
    run.redis.restart(down_seconds=2.0)
    at_pg = int(run.users * run.rng.uniform(0.4, 0.7))
    _wait(run, lambda: _recorded(notification_id) >= at_pg, f"{at_pg} recorded")
    terminated = terminate_database_connections()
    timed_out = not _wait(run, lambda: _completed(notification_id), "the notification to complete")
    report = _count(run, [notification_id])
    return report | {"redis_restarted_at_recorded": at, "pg_terminated_at_recorded": at_pg,
                     "pg_connections_terminated": terminated, "timed_out": timed_out}


def redis_data_loss(run: Run) -> dict:
    """Redis loses all its data (FLUSHALL: a restart without its AOF, a failover to an empty replica) at a
    random point of a fan-out: claims, counters, the epoch and the Celery queues are gone at once."""
    run.provider.reset(latency_ms=max(run.latency_ms, 20))
    notification_id = _fan_out(run, "data-loss")
    at = int(run.users * run.rng.uniform(0.1, 0.7))
    _wait(run, lambda: _recorded(notification_id) >= at, f"{at} recorded")
    recorded_at_loss = _recorded(notification_id)
    progress.client().flushall()
    lost_at = time.monotonic()
    timed_out = not _wait(run, lambda: _completed(notification_id), "the notification to complete")
    report = _count(run, [notification_id])
    return report | {"flushed_at_recorded": recorded_at_loss, "completed_after_loss_s": round(
        time.monotonic() - lost_at, 1), "timed_out": timed_out}


def beat(run: Run) -> dict:
    """Two beat processes (a double deployment), one of them killed and restarted around the fire time."""
    from apps.audience.models import Topic
    from apps.campaigns import service
    from apps.campaigns.models import Campaign, CampaignRun, Template
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
    launched = _wait(run, lambda: CampaignRun.objects.filter(campaign=campaign, notification__isnull=False).exists(),
                     "beat to launch the campaign")
    notification_ids = list(Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                            .values_list("pk", flat=True))
    run.notification_ids += notification_ids
    timed_out = not (launched and _wait(run, lambda: all(_completed(n) for n in notification_ids),
                                        "the campaign to complete"))
    time.sleep(3)  # room for a second fire
    for index in range(2):
        run.stack.kill(f"beat-{index}", signal.SIGTERM)
    runs = CampaignRun.objects.filter(campaign=campaign).count()
    notification_ids = list(Notification.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
                            .values_list("pk", flat=True))
    report = _count(run, notification_ids)
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


SCENARIOS: dict[str, Callable[[Run], dict]] = {
    "crash": crash, "provider_faults": provider_faults, "poison": poison,
    "dependency_restarts": dependency_restarts, "redis_data_loss": redis_data_loss, "beat": beat,
}
