"""A fan-out with a tenth of its audience suppressed skips exactly those, through the real pipeline (broker,
Celery workers, the fake provider). NOTIFY_TEST_SUPPRESSED_FANOUT sets the audience size: 20,000 by default, so
that the suite fits CI's 15 minutes; NOTIFY_TEST_SUPPRESSED_FANOUT=100000 runs the issue's 100,000."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import connection

from apps.delivery.models import Delivery, DeliveryStatus
from apps.delivery.service import notify
from apps.harness.suppression_loading import suppress_share
from tests.conftest import reachable_fan_ids
from tests.delivery.test_pipeline import completed

USERS = int(os.environ.get("NOTIFY_TEST_SUPPRESSED_FANOUT", "20000"))
TOPIC = f"test-suppressed-{USERS}"


def ids(sql: str, params: list) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_with_a_tenth_suppressed_skips_exactly_those(stack, provider):
    from apps.harness.seeding import seed_audience

    seed_audience(USERS, TOPIC)
    assert suppress_share(TOPIC, "push", every=10) in range(USERS // 10, USERS // 10 + 2)
    # Suppressed and still active (an inactive user is skipped as inactive first), worked out without the pipeline.
    suppressed = ids("SELECT s.recipient_id FROM receipts_suppression s JOIN audience_recipient r"
                     " ON r.id = s.recipient_id AND r.is_active WHERE s.channel = 'push' AND s.lifted_at IS NULL", [])
    reachable = {i for i in reachable_fan_ids(TOPIC) if i % 10 != 0}  # suppress_share(every=10) took the rest
    notification = notify(category="goal-alerts", audience={"topic": TOPIC}, channels=["push"], title="GOAL",
                          idempotency_key=f"suppressed-{uuid.uuid4()}")
    done = completed(notification.pk, timeout=600)
    assert done.targeted == USERS
    rows = Delivery.of_notification(notification.pk)
    skipped_as_suppressed = set(rows.filter(status=DeliveryStatus.SKIPPED, reason="suppressed")
                                .values_list("recipient_id", flat=True))
    assert skipped_as_suppressed == suppressed and len(suppressed) >= USERS // 20
    sent = set(rows.filter(status=DeliveryStatus.SENT).values_list("recipient_id", flat=True))
    assert sent == reachable and not sent & suppressed
    stats = provider.stats()
    assert stats["duplicates"] == 0
    assert stats["unique"] == rows.filter(status=DeliveryStatus.SENT).count()  # one device each (single profile)
