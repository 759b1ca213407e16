"""What every chaos scenario shares: the run's stack and audience, its fan-out, waiting through outages it
caused, and counting at the provider and in PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection

from apps.core.outages import OUTAGES, forget_broken_connections
from apps.delivery import progress, records
from apps.delivery.models import Delivery, DeliveryStatus, Notification
from apps.delivery.service import notify
from apps.harness.fake_server import FakeProviderControl
from apps.harness.processes import Stack

from .services import RedisServer


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


def fan_out(run: Run, label: str) -> int:
    notification = notify(category="goal-alerts", audience={"topic": run.topic}, channels=["push"],
                          title="GOAL! {{ team }} 1-0", context={"team": "Home"},
                          idempotency_key=f"chaos-{run.run_id}-{label}")
    run.notification_ids.append(notification.pk)
    return notification.pk


def patiently(read: Callable, default=None):  # noqa: ANN001, ANN202
    """Read through an outage this run caused: a dependency that is away reads as `default`."""
    try:
        return read()
    except OUTAGES:
        forget_broken_connections()
        return default


def recorded(notification_id: int) -> int:
    state = patiently(lambda: progress.read(notification_id), {})
    return int(sum(state.get(k, 0) for k in progress.TERMINAL))


def wait_until(run: Run, predicate: Callable[[], bool], what: str) -> bool:
    deadline = time.monotonic() + run.timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    run.log(f"timed out waiting for {what}")
    return False


def completed(notification_id: int) -> bool:
    return bool(patiently(lambda: Notification.objects.filter(pk=notification_id, status="completed").exists()))


def count(run: Run, notification_ids: list[int]) -> dict:
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
