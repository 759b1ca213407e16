"""The fan-out through the real broker, Celery workers, PostgreSQL, Redis and the fake provider."""

import json
import signal
import time
import uuid

import pytest

from apps.delivery import records
from apps.delivery.batch_message import BatchMessage
from apps.delivery.models import Delivery, DeliveryStatus, Notification
from apps.delivery.service import notify
from apps.delivery.signals import notification_requested
from apps.streaming.client import EventProducer
from apps.streaming.topics import EVENTS, channel_topic, topic_name
from tests.conftest import TEST_SOURCE, reachable_fan_ids, wait_until


def completed(notification_id: int, timeout: float = 90.0) -> Notification:
    return wait_until(lambda: Notification.objects.filter(pk=notification_id, status="completed").first(),
                      timeout=timeout, message=f"notification {notification_id} to complete")


def expected_counts(topic_slug: str, category: str = "goal-alerts") -> tuple[int, int]:
    """(reachable, skipped) computed independently of the pipeline, from the seeded data."""
    from apps.audience.models import Follow

    reachable = len(reachable_fan_ids(topic_slug, category))
    return reachable, Follow.objects.filter(topic__slug=topic_slug).count() - reachable


@pytest.mark.django_db(transaction=True)
def test_fan_out_reaches_every_opted_in_fan_exactly_once(stack, provider, fans):
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"],
                          title="GOAL {{ team }}", context={"team": "Home"}, idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    reachable, skipped = expected_counts("test-fans")
    assert done.targeted == 3000
    assert (done.sent, done.skipped, done.failed) == (reachable, skipped, 0)
    stats = provider.stats()
    assert stats["unique"] == reachable and stats["duplicates"] == 0
    reasons = set(Delivery.of_notification(notification.pk).filter(status=DeliveryStatus.SKIPPED)
                  .values_list("reason", flat=True))
    assert reasons == {"opted_out", "inactive", "no_active_device"}
    opted_out = Delivery.of_notification(notification.pk).filter(reason="opted_out")
    assert opted_out.exists()
    assert not opted_out.filter(recipient__preferences__enabled=True).exists()


@pytest.mark.django_db(transaction=True)
def test_repeated_idempotency_key_sends_nothing_new(stack, provider, fans):
    key = f"goal-{uuid.uuid4()}"
    first = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"], title="GOAL",
                   idempotency_key=key)
    completed(first.pk)
    sent = provider.stats()["received"]
    again = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"], title="GOAL",
                   idempotency_key=key)
    signal_copy = notification_requested.send(sender=None, category="goal-alerts", audience={"topic": "test-fans"},
                                              channels=["push"], title="GOAL", idempotency_key=key)[0][1]
    assert again.pk == first.pk == signal_copy.pk
    assert Notification.objects.filter(idempotency_key=key).count() == 1
    time.sleep(2)
    assert provider.stats()["received"] == sent


@pytest.mark.django_db(transaction=True)
def test_redelivered_batch_message_sends_nothing_twice(stack, provider, fans):
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"], title="GOAL",
                          idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    before = provider.stats()
    ids = list(Delivery.of_notification(notification.pk).filter(status=DeliveryStatus.SENT)
               .order_by("recipient_id").values_list("recipient_id", flat=True)[:1200])
    # Replay the dispatcher's first batch, as a redelivery would (same batch id), and a fresh
    # copy under a new batch id as a re-dispatch would: neither may reach the provider again.
    producer = EventProducer()
    for batch_id, resume in (("push:1:0", False), ("push:9:0", True)):
        body, headers = BatchMessage(notification.pk, "push", "normal", batch_id, ids, resume=resume).signed()
        producer.produce(channel_topic("push", "normal"), body, headers=headers)
    producer.flush()
    time.sleep(4)
    assert provider.stats() == before
    assert records.count_by_status(notification.pk)["sent"] == done.sent


@pytest.mark.django_db(transaction=True)
def test_killing_a_bridge_mid_run_loses_nothing(stack, provider, transactional_db):
    from apps.harness.seeding import seed_audience

    seed_audience(20_000, "kill-fans")
    notification = notify(category="goal-alerts", audience={"topic": "kill-fans"}, channels=["push"], title="GOAL",
                          idempotency_key=f"t-{uuid.uuid4()}")
    wait_until(lambda: Delivery.of_notification(notification.pk).filter(status=1).exists(), message="first sends")
    stack.kill("bridge-send-normal-0", signal.SIGKILL)
    try:
        done = completed(notification.pk, timeout=120)
    finally:
        stack.start_bridge("bridge-send-normal-0", "send", "normal")
    reachable, skipped = expected_counts("kill-fans")
    assert (done.sent, done.skipped, done.failed) == (reachable, skipped, 0)
    assert provider.stats()["unique"] == reachable
    assert provider.stats()["duplicates"] == 0


@pytest.mark.django_db(transaction=True)
def test_poison_event_is_dead_lettered_and_the_consumer_goes_on(stack, provider, fans, event_source):
    from apps.delivery.models import DeadLetter

    producer = EventProducer()
    producer.produce(topic_name(EVENTS), b"{not json")
    producer.produce(topic_name(EVENTS), json.dumps({"category": "goal-alerts", "source": TEST_SOURCE}).encode())
    producer.produce(channel_topic("push", "normal"), json.dumps({"n": "x"}).encode())
    producer.flush()
    wait_until(lambda: DeadLetter.objects.count() >= 3, message="three dead letters")
    reasons = " ".join(DeadLetter.objects.values_list("reason", flat=True))
    assert "not valid JSON" in reasons and "idempotency_key" in reasons and "invalid batch" in reasons
    # an event from another service, with no Python of ours in its process
    key = f"ext-{uuid.uuid4()}"
    recipient_id = fans.topic.follows.first().recipient_id
    producer.produce(topic_name(EVENTS), json.dumps({
        "source": TEST_SOURCE, "idempotency_key": key, "category": "security",
        "audience": {"recipients": [recipient_id]}, "channels": ["push"], "title": "Your code is 123456"}).encode())
    producer.flush()
    notification = wait_until(lambda: Notification.objects.filter(idempotency_key=key).first(), message="event")
    assert completed(notification.pk).targeted == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_notification_in_a_batch_is_skipped_without_crash_loop(stack, provider, fans):
    producer = EventProducer()
    message = {"n": 987654321, "c": "push", "p": "normal", "b": "push:1:0", "r": [1, 2, 3]}
    producer.produce(channel_topic("push", "normal"), json.dumps(message).encode())
    producer.flush()
    # the pipeline keeps working afterwards
    notification = notify(category="goal-alerts", audience={"recipients": [fans.topic.follows.first().recipient_id]},
                          channels=["push"], title="after", idempotency_key=f"t-{uuid.uuid4()}")
    assert completed(notification.pk).targeted == 1


@pytest.mark.django_db(transaction=True)
def test_a_stalled_notification_is_dispatched_again_and_sends_each_fan_once(stack, provider, fans):
    """A batch lost outright (the broker restarted between popping a task and noting it unacked)
    leaves a dispatched notification with recipients open and nothing moving: reconcile dispatches
    it again. Here every batch is lost; then a second stall check finds nothing left to send."""
    from apps.delivery.models import NotificationStatus, Source
    from apps.delivery.requests import parse_request
    from apps.delivery.service import submit
    from apps.delivery.tasks import reconcile_notification

    request = parse_request({"category": "goal-alerts", "audience": {"topic": "test-fans"}, "channels": ["push"],
                             "title": "GOAL", "idempotency_key": f"t-{uuid.uuid4()}"})
    notification = submit(request, Source.API, publish=False)
    Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.DISPATCHED, targeted=3000)
    reconcile_notification(notification.pk)
    done = completed(notification.pk)
    reachable, skipped = expected_counts("test-fans")
    assert (done.sent, done.skipped, done.failed) == (reachable, skipped, 0)
    # Stalled again (say the counters were lost): a second dispatch finds every recipient claimed,
    # sends nothing, and the reconcile that follows it completes the notification from PostgreSQL.
    from apps.delivery.tasks import dispatch_notification

    Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.DISPATCHED)
    dispatch_notification.apply_async(args=[notification.pk], kwargs={"again": True}, queue="dispatch")
    assert completed(notification.pk).sent == reachable
    assert provider.stats()["unique"] == reachable and provider.stats()["duplicates"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_dispatch_completes_a_notification_its_first_run_left_unwatched(stack, provider, fans):
    """The dispatcher killed after marking the notification dispatched and before handing the counters
    the audience size: every batch has finished and counted, but nothing knows the total. The
    redelivered dispatch task must finish that part, or nothing ever completes the notification."""
    from apps.audience.models import Follow
    from apps.delivery import progress
    from apps.delivery.models import NotificationStatus, Source
    from apps.delivery.requests import parse_request
    from apps.delivery.service import submit
    from apps.delivery.tasks import dispatch_notification

    recipients = list(Follow.objects.filter(topic__slug="test-fans").order_by("recipient_id")
                      .values_list("recipient_id", flat=True)[:3])
    request = parse_request({"category": "goal-alerts", "audience": {"recipients": recipients},
                             "channels": ["push"], "title": "GOAL", "idempotency_key": f"t-{uuid.uuid4()}"})
    notification = submit(request, Source.API, publish=False)
    outcomes = records.Outcomes()
    for recipient_id in recipients:
        outcomes.add(recipient_id, DeliveryStatus.SENT, provider_id="p")
    assert progress.add(notification.pk, **records.write(notification.pk, "push", outcomes)) is False
    Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.DISPATCHED,
                                                           targeted=len(recipients))
    before = provider.stats()
    dispatch_notification.apply_async(args=[notification.pk], queue="dispatch")
    assert completed(notification.pk, timeout=10).sent == len(recipients)
    assert provider.stats() == before


@pytest.mark.django_db(transaction=True)
def test_a_forged_or_altered_batch_is_dead_lettered_and_sends_nothing(stack, provider, fans, settings):
    """Internal topics take only the platform's own messages: a batch is trusted to have passed opt-outs."""
    from apps.delivery.batch_message import SIGNATURE_HEADER, signature
    from apps.delivery.models import DeadLetter

    notification = notify(category="goal-alerts", audience={"recipients": [fans.topic.follows.first().recipient_id]},
                          channels=["push"], title="real", idempotency_key=f"t-{uuid.uuid4()}")
    completed(notification.pk)
    before = provider.stats()["received"]
    ids = list(fans.topic.follows.values_list("recipient_id", flat=True)[:50])
    forged = BatchMessage(notification.pk, "push", "normal", "push:66:0", ids, replay=True).encode()
    altered_body, headers = BatchMessage(notification.pk, "push", "normal", "push:67:0", ids[:1]).signed()
    producer = EventProducer()
    producer.produce(channel_topic("push", "normal"), forged)  # no signature
    producer.produce(channel_topic("push", "normal"), forged, headers={SIGNATURE_HEADER: "0" * 64})
    producer.produce(channel_topic("push", "normal"), altered_body.replace(b'"r":[', b'"r":[' + b"%d," % ids[1]),
                     headers=headers)
    producer.flush()
    letters = wait_until(lambda: list(DeadLetter.objects.filter(reason__contains="sign")) or None,
                         message="the forged batches dead-lettered")
    wait_until(lambda: DeadLetter.objects.filter(reason__contains="sign").count() == 3, message="all three")
    time.sleep(2)
    assert provider.stats()["received"] == before, "a forged batch reached the provider"
    assert {letter.reason_kind for letter in letters} == {"invalid"}
    # Rotation: a batch signed with the previous key still counts while that key is listed, and no longer after.
    from apps.delivery.batch_message import BadBatch, verify

    body, headers = BatchMessage(notification.pk, "push", "normal", "push:68:0", ids[:1]).signed()
    settings.BUS_SIGNING_KEYS = ["the-new-key", *settings.BUS_SIGNING_KEYS]
    verify(body, headers[SIGNATURE_HEADER])
    assert signature(body) != headers[SIGNATURE_HEADER]  # new messages are signed with the new key
    settings.BUS_SIGNING_KEYS = ["the-new-key"]
    with pytest.raises(BadBatch, match="bad signature"):
        verify(body, headers[SIGNATURE_HEADER])
