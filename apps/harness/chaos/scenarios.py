"""The chaos scenarios. Each runs a goal-alert fan-out on the real stack while something breaks, waits
until the notification completes, and counts: every recipient must end sent (and the provider must
have received it), or skipped, failed or dead-lettered with a reason."""

from __future__ import annotations

import json
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.core import redis_client
from apps.core.channels import Channel, Priority
from apps.delivery import progress
from apps.delivery.models import DeadLetter, Delivery, DeliveryStatus
from apps.delivery.publisher import producer, publish_notification_event
from apps.harness.fake_server import Faults
from apps.harness.processes import Stack
from apps.streaming.topics import DEFERRED, EVENTS, RETRY, channel_topic, topic_name

from .beat_scenario import beat
from .run_state import Run, completed, count, fan_out, patiently, recorded, wait_until
from .services import terminate_database_connections

# What a killed send child may resend at most, counted per device as the provider counts duplicates: its
# provider calls in flight, and the other devices of their recipients. A recipient is journaled once every
# one of their devices has answered (sender._journal_as_answered), so one whose phone was in an unanswered
# call is sent again on their tablet too. The realistic profile gives a user at most 3 devices.
SEND_BATCH = settings.PROVIDER_CALLS_IN_FLIGHT * settings.PROVIDER_CALL_SIZE
MOST_DEVICES_PER_USER = 3


def crash(run: Run) -> dict:
    """kill -9 the dispatcher mid-dispatch, a send worker's child and a send bridge, at random points."""
    run.provider.reset(latency_ms=run.latency_ms)
    notification_id = fan_out(run, "crash")
    kills = []
    wait_until(run, lambda: "t_dispatch_start" in patiently(lambda: progress.read(notification_id), {}), "dispatch")
    time.sleep(run.rng.uniform(0, 0.01 + run.users / 1_000_000))  # dispatch streams ~1M recipients a second
    mid_dispatch = "t_dispatch_end" not in progress.read(notification_id)
    kills.append({"dispatcher": len(_kill_children(run.stack, "worker-dispatch")), "mid_dispatch": mid_dispatch})
    at = int(run.users * run.rng.uniform(0.05, 0.3))
    wait_until(run, lambda: recorded(notification_id) >= at, f"{at} recorded")
    children = _kill_children(run.stack, "worker-send-normal-0", one=run.rng)
    kills.append({"send_worker_child": len(children), "at_recorded": at})
    at = int(run.users * run.rng.uniform(0.3, 0.6))
    wait_until(run, lambda: recorded(notification_id) >= at, f"{at} recorded")
    run.stack.kill("bridge-send-normal-0", signal.SIGKILL)
    time.sleep(1)
    run.stack.start_bridge("bridge-send-normal-0", "send", "normal")
    kills.append({"send_bridge": 1, "at_recorded": at})
    timed_out = not wait_until(run, lambda: completed(notification_id), "the notification to complete")
    report = count(run, [notification_id])
    # Only a killed send child can have called the provider without recording it: one batch each.
    report |= {"kills": kills, "duplicate_bound": SEND_BATCH * MOST_DEVICES_PER_USER * len(children),
               "timed_out": timed_out}
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
    notification_id = fan_out(run, "faults")
    timed_out = not wait_until(run, lambda: completed(notification_id), "the notification to complete")
    report = count(run, [notification_id])
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
    notification_id = fan_out(run, "poison")
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

    wait_until(run, lambda: dead_letters() >= len(messages), f"{len(messages)} dead letters")
    timed_out = not wait_until(run, lambda: completed(notification_id), "the notification to complete")
    time.sleep(3)  # a message that looped would be dead-lettered again meanwhile
    report = count(run, [notification_id])
    letters = dead_letters()
    report["missing"] += max(len(messages) - letters, 0)
    reasons = Counter(reason[:60] for reason in poison_letters().values_list("reason", flat=True))
    return report | {"poison_messages": len(messages), "poison_dead_lettered": letters, "reasons": dict(reasons),
                     "looped": max(letters - len(messages), 0), "timed_out": timed_out}


def dependency_restarts(run: Run) -> dict:
    """Redis restarted mid-run (SHUTDOWN, 2 s away, back with its AOF); PostgreSQL connections terminated."""
    run.provider.reset(latency_ms=max(run.latency_ms, 20))
    notification_id = fan_out(run, "restarts")
    at = int(run.users * run.rng.uniform(0.1, 0.3))
    wait_until(run, lambda: recorded(notification_id) >= at, f"{at} recorded")
    run.redis.restart(down_seconds=2.0)
    at_pg = int(run.users * run.rng.uniform(0.4, 0.7))
    wait_until(run, lambda: recorded(notification_id) >= at_pg, f"{at_pg} recorded")
    terminated = terminate_database_connections()
    timed_out = not wait_until(run, lambda: completed(notification_id), "the notification to complete")
    report = count(run, [notification_id])
    return report | {"redis_restarted_at_recorded": at, "pg_terminated_at_recorded": at_pg,
                     "pg_connections_terminated": terminated, "timed_out": timed_out}


def redis_data_loss(run: Run) -> dict:
    """Redis loses all its data (FLUSHALL: a restart without its AOF, a failover to an empty replica) at a
    random point of a fan-out: claims, counters, the epoch and the Celery queues are gone at once."""
    run.provider.reset(latency_ms=max(run.latency_ms, 20))
    notification_id = fan_out(run, "data-loss")
    at = int(run.users * run.rng.uniform(0.1, 0.7))
    wait_until(run, lambda: recorded(notification_id) >= at, f"{at} recorded")
    recorded_at_loss = recorded(notification_id)
    redis_client.client().flushall()
    lost_at = time.monotonic()
    timed_out = not wait_until(run, lambda: completed(notification_id), "the notification to complete")
    report = count(run, [notification_id])
    return report | {"flushed_at_recorded": recorded_at_loss, "completed_after_loss_s": round(
        time.monotonic() - lost_at, 1), "timed_out": timed_out}


SCENARIOS: dict[str, Callable[[Run], dict]] = {
    "crash": crash, "provider_faults": provider_faults, "poison": poison,
    "dependency_restarts": dependency_restarts, "redis_data_loss": redis_data_loss, "beat": beat,
}
