"""Redis is a cache: losing all of its data mid fan-out may cost time, never a duplicate beyond the provider
calls in flight at that instant, nor a loss. PostgreSQL is the record of what was sent."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from apps.core import redis_client
from apps.delivery import records
from apps.delivery.models import Notification
from apps.delivery.service import notify
from tests.conftest import CROWD_TOPIC, wait_until


def lose_all_redis_data() -> int:
    """What FLUSHALL does, to this run's keys only (the Redis is shared): claims, counters, epoch and the
    Celery queues, which live under the same prefix."""
    client = redis_client.client()
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=10_000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
    return len(keys)


@pytest.mark.django_db(transaction=True)
def test_redis_losing_its_data_mid_fan_out_resends_at_most_the_calls_in_flight(stack, provider, crowd):
    provider.reset(latency_ms=40)  # slow enough to lose Redis while batches are still being sent
    notification = notify(category="goal-alerts", audience={"topic": CROWD_TOPIC}, channels=["push"],
                          title="GOAL", idempotency_key=f"loss-{uuid.uuid4()}")

    def recorded() -> int:
        return sum(records.count_by_status(notification.pk).values())

    wait_until(lambda: recorded() >= 5_000, timeout=60, message="a share of the fan-out recorded")
    lost = lose_all_redis_data()
    at_loss = recorded()
    done = wait_until(lambda: Notification.objects.filter(pk=notification.pk, status="completed").first(),
                      timeout=120, message="the notification to complete after Redis lost its data")
    counts = records.count_by_status(notification.pk)
    stats = provider.stats()
    assert lost > 0 and at_loss < 20_000
    assert sum(counts.values()) == done.targeted == 20_000  # every recipient has a final state
    assert counts["sent"] == done.sent > 0
    # In flight at that instant: the send worker's children times their provider calls in flight.
    bound = 2 * settings.PROVIDER_CALLS_IN_FLIGHT * settings.PROVIDER_CALL_SIZE
    assert stats["duplicates"] <= bound, (stats, at_loss)
    assert stats["unique"] >= counts["sent"]  # nobody recorded as sent was not reached
