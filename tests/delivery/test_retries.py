"""Provider failures through the real pipeline: retries, the retry topic, dead letters and replay."""

import time
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audience.models import Device, Follow
from apps.delivery import ratelimit
from apps.delivery.models import DeadLetter, Delivery, DeliveryStatus, Notification
from apps.delivery.service import notify
from apps.harness.fake_server import Faults
from apps.preferences.models import Category
from tests.conftest import push_recipients, wait_until
from tests.delivery.test_pipeline import completed, expected_counts


def flaky_category(max_attempts: int) -> str:
    slug = f"flaky-{max_attempts}"
    Category.objects.get_or_create(slug=slug, defaults={"name": slug, "kind": "alerts", "max_attempts": max_attempts})
    return slug


@pytest.mark.django_db(transaction=True)
def test_only_the_recipients_that_failed_are_sent_again(stack, provider, fans):
    provider.reset(Faults(fail_unavailable=0.1, fail_5xx=0.1))
    category = flaky_category(20)
    notification = notify(category=category, audience={"topic": "test-fans"}, channels=["push"],
                          title="retry me", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk, timeout=120)
    reachable, skipped = expected_counts("test-fans", category)
    stats = provider.stats()
    assert (done.sent, done.skipped, done.failed) == (reachable, skipped, 0)
    assert stats["injected"]["unavailable"] > 0
    # Every accepted token was accepted once: a resend of the whole batch would show as duplicates.
    assert stats["unique"] == reachable and stats["duplicates"] == 0 and stats["received"] == reachable
    assert Delivery.of_notification(notification.pk).filter(status=DeliveryStatus.SENT, attempts__gt=1).exists()


@pytest.mark.django_db(transaction=True)
def test_invalid_tokens_fail_with_the_reason_and_deactivate_the_device(stack, provider, fans):
    provider.reset(Faults(fail_invalid=0.05))
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"],
                          title="hello", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    failed = Delivery.of_notification(notification.pk).filter(status=DeliveryStatus.FAILED)
    assert done.failed == failed.count() == provider.stats()["injected"]["invalid"] > 0
    assert set(failed.values_list("reason", flat=True)) == {"Unregistered"}
    assert not Device.objects.filter(recipient_id__in=failed.values("recipient_id"), is_active=True).exists()
    assert Device.objects.filter(deactivated_reason="provider: invalid token").count() == done.failed


@pytest.mark.django_db(transaction=True)
def test_long_retry_after_goes_through_the_retry_topic_then_dead_letters_then_replays(stack, provider, fans):
    fan_ids = list(Follow.objects.filter(topic__slug="test-fans", recipient__is_active=True,
                                         recipient__devices__is_active=True)
                   .order_by("recipient_id").values_list("recipient_id", flat=True)[:5])
    provider.reset(Faults(fail_429=1.0, retry_after_s=6))
    started = time.monotonic()
    notification = notify(category=flaky_category(2), audience={"recipients": fan_ids}, channels=["push"],
                          title="later", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk, timeout=60)
    elapsed = time.monotonic() - started
    assert done.failed == 5 and done.sent == 0
    assert provider.stats()["requests"] == 2
    assert elapsed >= 6, "the second attempt must wait for Retry-After"
    letter = DeadLetter.objects.get(notification_id=notification.pk)
    assert sorted(letter.recipient_ids) == fan_ids
    assert "gave up after 2 attempt(s): HTTP 429" in letter.reason
    assert set(Delivery.of_notification(notification.pk).values_list("status", flat=True)) == {
        DeliveryStatus.DEAD_LETTERED}

    provider.reset()
    call_command("replay_dead_letters", str(letter.pk))
    wait_until(lambda: Delivery.of_notification(notification.pk).filter(status=DeliveryStatus.SENT).count() == 5,
               timeout=30, message="the replay to be sent")
    call_command("replay_dead_letters", str(letter.pk))  # a second replay sends nothing
    wait_until(lambda: completed(notification.pk).sent == 5, timeout=30, message="the recount")
    time.sleep(1)
    stats = provider.stats()
    assert stats["unique"] == 5 and stats["duplicates"] == 0


@pytest.mark.django_db(transaction=True)
def test_replay_command_rejects_bad_input(stack):
    with pytest.raises(CommandError, match="ids, or --all"):
        call_command("replay_dead_letters")
    with pytest.raises(CommandError, match="no dead letter with id 999999"):
        call_command("replay_dead_letters", "999999")
    letter = DeadLetter.objects.create(topic="notify.events", reason="invalid event: not JSON")
    with pytest.raises(CommandError, match="nothing was replayable"):
        call_command("replay_dead_letters", str(letter.pk))


def test_rate_limit_is_shared_and_a_429_halves_it_then_it_recovers(monkeypatch):
    name = f"test-{uuid.uuid4().hex[:6]}"
    assert ratelimit.acquire(name, 500, 1000) == 0  # within the one-second burst
    assert ratelimit.acquire(name, 500, 1000) == 0
    wait = ratelimit.acquire(name, 500, 1000)  # a second worker asking for more must wait ~0.5 s
    assert 0.3 < wait <= 0.5
    assert ratelimit.cut(name, 1000) == pytest.approx(500, abs=1)
    assert ratelimit.cut(name, 1000) == pytest.approx(250, abs=1)
    assert 240 < ratelimit.current_rate(name, 1000) < 300
    assert ratelimit.acquire(f"{name}-other", 1000, 1000) == 0  # each provider has its own bucket
    monkeypatch.setattr(ratelimit, "RECOVERY_SECONDS", 1.0)
    time.sleep(1.0)
    assert ratelimit.current_rate(name, 1000) == 1000


@pytest.mark.django_db(transaction=True)
def test_a_message_that_cannot_be_rendered_fails_that_recipient_only(stack, provider):
    from apps.audience.models import Recipient
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    named = [Recipient.objects.create(external_id=f"named-{uuid.uuid4().hex[:8]}", name=f"Ann {i}") for i in range(3)]
    nameless = Recipient.objects.create(external_id=f"nameless-{uuid.uuid4().hex[:8]}")
    for recipient in [*named, nameless]:
        Device.objects.create(recipient=recipient, platform="fake", token=f"tmpl-{recipient.external_id}")
    notification = notify(category="goal-alerts", audience={"recipients": [r.pk for r in [*named, nameless]]},
                          channels=["push"], title="Hi {{ recipient.name }}", body="{{ team }} scored",
                          context={"team": "Home"}, idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    assert (done.sent, done.failed) == (3, 1)
    failed = Delivery.of_notification(notification.pk).get(status=DeliveryStatus.FAILED)
    assert failed.recipient_id == nameless.pk
    assert failed.reason == "template: missing variable recipient.name"
    assert provider.stats()["unique"] == 3


@pytest.mark.django_db(transaction=True)
def test_dead_letters_in_the_admin_and_replay_needs_the_permission(stack, provider, fans, client, admin_client):
    from django.contrib.auth.models import Permission, User

    fan_ids = list(Follow.objects.filter(topic__slug="test-fans", recipient__is_active=True,
                                         recipient__devices__is_active=True)
                   .order_by("recipient_id").values_list("recipient_id", flat=True)[:3])
    provider.reset(Faults(fail_5xx=1.0))
    notification = notify(category=flaky_category(1), audience={"recipients": fan_ids}, channels=["push"],
                          title="x", idempotency_key=f"t-{uuid.uuid4()}")
    completed(notification.pk)
    letter = DeadLetter.objects.get(notification_id=notification.pk)
    page = admin_client.get("/admin/delivery/deadletter/").content.decode()
    assert "gave up after 1 attempt(s): HTTP 503" in page and "Replay the selected" in page

    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(staff)
    assert "Replay the selected" not in client.get("/admin/delivery/deadletter/").content.decode()
    client.post("/admin/delivery/deadletter/", {"action": "replay_selected", "_selected_action": [letter.pk]})
    letter.refresh_from_db()
    assert letter.replayed_at is None  # refused without delivery.replay_deadletter

    provider.reset()
    admin_client.post("/admin/delivery/deadletter/", {"action": "replay_selected", "_selected_action": [letter.pk]})
    wait_until(lambda: completed(notification.pk).sent == 3, timeout=30, message="the replayed sends")
    assert provider.stats()["unique"] == 3


def _undispatched_push(size: int) -> tuple[int, list[int]]:
    """A notification to `size` new recipients with a fake device each, stamped as dispatched (the
    counters know its audience) but left to the test to send, in this process."""
    from apps.core.redis_client import client
    from apps.delivery import epoch, progress
    from apps.delivery.requests import parse_request
    from apps.delivery.service import record

    ids = push_recipients(size)
    request = parse_request({"category": "goal-alerts", "audience": {"recipients": ids}, "channels": ["push"],
                             "title": "x"})
    notification = record(request, "python")[0]
    Notification.objects.filter(pk=notification.pk).update(dispatch_epoch=epoch.current())
    client().hset(progress.progress_key(notification.pk), "targeted", size)
    return notification.pk, ids


@pytest.fixture
def in_process_sender():
    from apps.providers import registry

    registry.reset()
    yield
    registry.reset()


@pytest.mark.django_db(transaction=True)
def test_a_batch_recorded_but_not_counted_is_counted_by_its_resumed_run(stack, provider, in_process_sender,
                                                                       monkeypatch):
    """Redis went away between a batch's INSERT and its count: the resumed run (in this process) sends
    nothing again and counts what the first run recorded, so the notification completes at once
    instead of waiting for the reconcile check."""
    import redis

    from apps.delivery import progress, sender

    notification_id, ids = _undispatched_push(6)
    counting = progress._add_and_check

    def redis_gone(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(progress, "_add_and_check", redis_gone)
    with pytest.raises(redis.ConnectionError):
        sender.send_batch(notification_id, "push", "push:1:0", ids)
    assert Delivery.objects.filter(notification_id=notification_id).count() == len(ids)  # recorded
    monkeypatch.setattr(progress, "_add_and_check", counting)
    resumed = sender.send_batch(notification_id, "push", "push:1:0", ids)
    assert resumed.counts == {} and resumed.completed
    assert progress.read(notification_id)["sent"] == len(ids)
    again = sender.send_batch(notification_id, "push", "push:1:0", ids)  # a redelivery: done, counted once
    assert not again.completed and progress.read(notification_id)["sent"] == len(ids)
    assert provider.stats()["received"] == len(ids)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stopped", ["while handing on", "after handing on, before done"])
def test_a_batch_stopped_while_handing_its_retries_on_hands_the_same_on_and_sends_nothing(
        stack, provider, in_process_sender, stopped):
    """Every provider call failed for now, so the batch hands all its recipients to a retry. A kill there
    (here: hand_on raising) must neither lose that retry nor let the resumed run send them itself."""
    from apps.delivery import claims, sender

    notification_id, ids = _undispatched_push(5)
    provider.reset(faults=Faults(fail_5xx=1.0))
    handed: list[list[int]] = []

    def killed_while_handing_on(report: sender.BatchReport) -> None:
        if stopped == "after handing on, before done":
            handed.append(sorted(report.retry_ids))
        raise SystemExit("killed")

    try:
        with pytest.raises(SystemExit):
            sender.send_batch(notification_id, "push", "push:1:0", ids, hand_on=killed_while_handing_on)
        requests = provider.stats()["requests"]
        resumed = sender.send_batch(notification_id, "push", "push:1:0", ids,
                                    hand_on=lambda report: handed.append(sorted(report.retry_ids)))
        assert requests > 0 and provider.stats()["requests"] == requests  # the resumed run called no provider
    finally:
        provider.reset(faults=Faults())
    assert handed[-1] == sorted(ids) and len(handed) == (2 if stopped.startswith("after") else 1)
    assert resumed.handed_on and not resumed.completed
    assert claims.claim(notification_id, "push", "push:1:0").state == "done"
