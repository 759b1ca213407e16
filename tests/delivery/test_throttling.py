"""Frequency caps, deferral through notify.deferred, quiet hours, a lost throttle store, and priority isolation.

Time is moved with the pipeline's controllable clock (apps/core/clock.py), never slept through.
"""

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from apps.audience.models import Recipient
from apps.core import clock, queues, redis_client
from apps.delivery import progress, throttle
from apps.delivery.models import Delivery, DeliveryStatus, Notification
from apps.delivery.service import notify
from apps.preferences.models import QuietHours
from tests.conftest import push_recipients, wait_until
from tests.delivery.test_pipeline import completed


@pytest.fixture
def moving_clock():
    clock.reset()
    yield clock
    clock.reset()


@pytest.fixture
def noon_clock(moving_clock):
    """The moving clock, from the next noon UTC on: near midnight the daily cap window would roll over
    in the middle of a test. (Only for categories that live longer than that jump.)"""
    moving_clock.advance((12 * 3600 - moving_clock.now() % 86400) % 86400)
    return moving_clock


@pytest.fixture
def users(transactional_db):
    """Twenty recipients with a push device each (fake provider)."""
    return push_recipients(20)


def rows(notification_id: int) -> dict[int, tuple[int, str]]:
    return {d.recipient_id: (d.status, d.reason) for d in Delivery.of_notification(notification_id)}


def test_cap_holds_under_20_parallel_batches():
    """20 batches of 500 users at once, each a different notification: every user is admitted exactly twice."""
    users = list(range(10_000_000, 10_000_500))
    category = f"cap-test-{uuid.uuid4().hex[:6]}"
    now = clock.now()
    with ThreadPoolExecutor(20) as pool:
        refused = list(pool.map(lambda n: throttle.admit(category, 2, n, users, now), range(1, 21)))
    admitted_per_user = {u: sum(u not in r for r in refused) for u in users}
    assert set(admitted_per_user.values()) == {2}
    # a retried batch of a notification already counted is admitted again without using a slot
    counted = next(n for n, r in zip(range(1, 21), refused, strict=True) if users[0] not in r)
    assert users[0] not in throttle.admit(category, 2, counted, users[:1], now)
    assert users[0] in throttle.admit(category, 2, 99, users[:1], now)


@pytest.mark.django_db(transaction=True)
def test_capped_sends_are_deferred_then_delivered_when_the_window_opens(stack, provider, users, noon_clock):
    """Promotions allow 2 a day: the third goes to notify.deferred and is sent once the next UTC day starts."""
    sent = [notify(category="promotions", audience={"recipients": users}, channels=["push"], title=f"Offer {i}",
                   idempotency_key=f"promo-{uuid.uuid4()}") for i in range(2)]
    for notification in sent:
        done = completed(notification.pk)
        assert done.sent == len(users), rows(notification.pk)
    third = notify(category="promotions", audience={"recipients": users}, channels=["push"], title="Offer 3",
                   idempotency_key=f"promo-{uuid.uuid4()}")
    wait_until(lambda: progress.read(third.pk).get("throttled") == len(users), message="third offer deferred")
    assert not Delivery.of_notification(third.pk).exists()
    assert Notification.objects.get(pk=third.pk).status == "dispatched"  # open: deferred, not dropped
    received = provider.stats()["received"]
    assert received == 2 * len(users)
    noon_clock.advance(throttle.window_end(clock.now()) - clock.now() + 1)  # just past midnight UTC
    done = completed(third.pk, timeout=60)
    assert done.sent == len(users) and done.skipped == 0
    assert provider.stats()["received"] == 3 * len(users)
    assert {status for status, _ in rows(third.pk).values()} == {DeliveryStatus.SENT}


@pytest.mark.django_db(transaction=True)
def test_deferred_past_expiry_ends_skipped_as_throttled(stack, provider, users, noon_clock):
    for i in range(2):
        completed(notify(category="promotions", audience={"recipients": users[:5]}, channels=["push"],
                         title=f"Offer {i}", idempotency_key=f"promo-{uuid.uuid4()}").pk)
    late = notify(category="promotions", audience={"recipients": users[:5]}, channels=["push"], title="Late",
                  idempotency_key=f"promo-{uuid.uuid4()}")
    wait_until(lambda: progress.read(late.pk).get("throttled") == 5, message="deferred")
    noon_clock.advance(4 * 86400)  # promotions live 3 days
    done = completed(late.pk, timeout=60)
    assert (done.sent, done.skipped) == (0, 5)
    assert set(rows(late.pk).values()) == {(DeliveryStatus.SKIPPED, "throttled")}


def quiet_now(recipient_ids: list[int], zone: str, minutes_left: int) -> None:
    """Quiet hours that started an hour ago and end `minutes_left` from the clock's now, in `zone`."""
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(clock.now(), UTC).astimezone(ZoneInfo(zone))
    Recipient.objects.filter(pk__in=recipient_ids).update(timezone=zone)
    for recipient_id in recipient_ids:
        QuietHours.objects.create(recipient_id=recipient_id, start=(local - timedelta(hours=1)).time(),
                                  end=(local + timedelta(minutes=minutes_left)).time())


@pytest.mark.django_db(transaction=True)
def test_quiet_hours_defer_non_urgent_and_let_transactional_pass(stack, provider, users, moving_clock):
    quiet, loud = users[:10], users[10:]
    quiet_now(quiet, "America/New_York", minutes_left=10)
    goal = notify(category="goal-alerts", audience={"recipients": users}, channels=["push"], title="GOAL",
                  idempotency_key=f"q-{uuid.uuid4()}")
    otp = notify(category="security", audience={"recipients": quiet[:1]}, channels=["push"], title="Code 123456",
                 idempotency_key=f"otp-{uuid.uuid4()}")
    assert completed(otp.pk).sent == 1  # transactional passes quiet hours
    wait_until(lambda: len(rows(goal.pk)) == len(loud), message="the others sent")
    assert set(rows(goal.pk)) == set(loud)
    assert progress.read(goal.pk).get("quiet_hours") == len(quiet)
    moving_clock.advance(11 * 60)
    done = completed(goal.pk, timeout=60)
    assert done.sent == len(users)


@pytest.mark.django_db(transaction=True)
def test_quiet_hours_longer_than_the_notification_lives_skip_it(stack, provider, users, moving_clock):
    quiet_now(users[:3], "Asia/Kolkata", minutes_left=120)  # goal alerts live 15 minutes
    goal = notify(category="goal-alerts", audience={"recipients": users[:3]}, channels=["push"], title="GOAL",
                  idempotency_key=f"q-{uuid.uuid4()}")
    done = completed(goal.pk)
    assert (done.sent, done.skipped) == (0, 3)
    assert set(rows(goal.pk).values()) == {(DeliveryStatus.SKIPPED, "quiet_hours")}


@pytest.mark.django_db(transaction=True)
def test_without_the_throttle_store_transactional_goes_on_and_capped_is_deferred(stack, provider, users, broker,
                                                                                   caplog):
    """The sender in this process, with the throttle store pointing at a closed port."""
    from apps.delivery.requests import parse_request
    from apps.delivery.sender import send_batch
    from apps.delivery.service import record
    from apps.providers import registry
    from apps.streaming.local_broker import free_port

    def recorded(category: str):  # noqa: ANN202
        request = parse_request({"category": category, "audience": {"recipients": users[:5]}, "channels": ["push"],
                                 "title": "x"})
        return record(request, "python")[0]

    registry.reset()
    throttle._client = None
    caplog.set_level(logging.ERROR, logger="apps.delivery.throttle")
    try:
        with override_settings(THROTTLE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
            otp = recorded("security")
            assert send_batch(otp.pk, "push", "push:t:0", users[:5], priority="high").counts == {"sent": 5}
            promos = [recorded("promotions") for _ in range(3)]
            for promo in promos:
                report = send_batch(promo.pk, "push", "push:t:0", users[:5], priority="low")
                assert report.counts == {}
                assert progress.read(promo.pk)["throttled"] == 5
    finally:
        throttle._client = None
        registry.reset()
    outage_logs = [r for r in caplog.records if "throttle store unreachable" in r.getMessage()]
    assert len(outage_logs) == 1  # once per outage, not once per batch
    assert provider.stats()["received"] == 5
    assert not Delivery.objects.filter(notification_id__in=[p.pk for p in promos]).exists()
    # The deferred batches come back in a minute through the real pipeline; they must not land on
    # the fake provider during a later test, so their notifications go (the sender skips unknown ones).
    Notification.objects.filter(pk__in=[p.pk for p in promos]).delete()


@pytest.mark.django_db(transaction=True)
def test_high_priority_is_served_while_the_low_queue_holds_100k(stack, provider, users):
    """100,000 low-priority send tasks wait in send.low; an OTP still goes straight through."""
    from apps.delivery.tasks import send_batch

    low = notify(category="promotions", audience={"recipients": users[:1]}, channels=["push"], title="Sale",
                 idempotency_key=f"low-{uuid.uuid4()}")
    completed(low.pk)
    # Copies of that finished batch: each is a real task the low worker must take off the queue.
    sample_queue = f"sample-{uuid.uuid4().hex[:6]}"
    send_batch.apply_async(kwargs={"notification_id": low.pk, "channel": "push", "batch_id": "push:1:0.0",
                                   "recipient_ids": users[:1], "priority": "low"}, queue=sample_queue)
    redis = redis_client.client()
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    raw = json.loads(redis.rpop(f"{prefix}{sample_queue}"))
    low_queue = f"{prefix}{queues.send_queue('low')}"
    try:
        for _batch in range(10):
            pipe = redis.pipeline(transaction=False)
            for _ in range(10_000):
                raw["properties"]["delivery_tag"] = str(uuid.uuid4())
                raw["properties"]["delivery_info"]["routing_key"] = queues.send_queue("low")
                pipe.lpush(low_queue, json.dumps(raw))
            pipe.execute()
        assert redis.llen(low_queue) > 95_000
        otp = notify(category="security", audience={"recipients": users[1:2]}, channels=["push"], title="123456",
                     idempotency_key=f"otp-{uuid.uuid4()}")
        assert completed(otp.pk, timeout=30).sent == 1
        assert redis.llen(low_queue) > 50_000, "the low queue drained first: this proves nothing"
    finally:
        redis.delete(low_queue)
