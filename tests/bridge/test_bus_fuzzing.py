"""Any bytes on any consumed topic: published through a real producer to the running stack (Tansu, bridges,
Celery workers, PostgreSQL), interleaved with valid events. Every bad message is dead-lettered exactly once
(by topic, partition and offset), every valid event is delivered, and every group commits to the end."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Producer
from django.conf import settings
from hypothesis import Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.core.channels import Channel, Priority
from apps.delivery.models import DeadLetter, Delivery, Notification
from apps.streaming.lag import partitions_of
from apps.streaming.topics import DEFERRED, EVENTS, RETRY, bridge_groups, channel_topic, topic_name
from tests.conftest import TEST_SOURCE, reachable_fans, wait_until
from tests.kafka_offsets import uncommitted

BATCH_TOPICS = [channel_topic(c, p) for c in Channel.values for p in Priority.values]
NOT_BEFORE = "not-before"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
wrong_values = st.sampled_from([None, True, False, 0, -1, 2**63, 2**70, -(2**63), 1.5, 1e308, "", "x\u0000y", [],
                                [None], {}, {"a": 1}, "9" * 5000, "x" * 100_000])


def deep(depth: int) -> bytes:
    return (b'{"source": "tests", "idempotency_key": "deep", "category": "goal-alerts", "context": '
            + b"[" * depth + b"]" * depth + b"}")


def valid_event(recipient_id: int) -> dict:
    return {"source": TEST_SOURCE, "idempotency_key": f"fuzz-{uuid.uuid4()}", "category": "security",
            "audience": {"recipients": [recipient_id]}, "channels": ["push"], "title": "Your code is 123456"}


EVENT_FIELDS = ("source", "category", "audience", "channels", "title", "body", "context", "idempotency_key",
                "template_id")
# Values of wrong_values that are in fact fine for a field, given the rest of a valid event.
STILL_VALID = {"body": ("",), "context": ({}, {"a": 1}), "template_id": (None,), "resume": (True, False),
               "replay": (True, False), "d": ("",)}


def breaks(field: str, value: object) -> bool:
    return not any(value == ok and type(value) is type(ok) for ok in STILL_VALID.get(field, ()))


def event_mutations(recipient_id: int) -> st.SearchStrategy[bytes]:
    base = valid_event(recipient_id)
    broken_field = st.tuples(st.sampled_from(EVENT_FIELDS), wrong_values).filter(lambda fv: breaks(*fv))
    nul_field = st.sampled_from(["category", "title", "body", "idempotency_key"])
    return st.one_of(
        st.binary(max_size=300),
        json_values.filter(lambda v: not (isinstance(v, dict) and "notification_id" in v)).map(
            lambda v: json.dumps(v).encode()),
        broken_field.map(lambda fv: json.dumps(base | {fv[0]: fv[1]}).encode()),
        nul_field.map(lambda f: json.dumps(base | {f: f"{base.get(f, 'x')}\u0000"}).encode()),
        st.tuples(st.text(min_size=1, max_size=10).filter(lambda k: k not in EVENT_FIELDS), json_values).map(
            lambda kv: json.dumps(base | {kv[0]: kv[1]}).encode()),
        st.sampled_from([2**32, 2**63, -5, 0, True, 1.0]).map(
            lambda r: json.dumps(base | {"audience": {"recipients": [r]}}).encode()),
        st.integers(40, 100_000).map(deep),
        st.sampled_from([b'{"notification_id": 1.5}', b'{"notification_id": true}', b'{"notification_id": -3}',
                         b'{"notification_id": 99999999999999999999}', b'{"notification_id": 1, "priority": "x"}',
                         b'{"notification_id": 1, "priority": "high", "source": "platform"}',  # unsigned
                         b'{"notification_id": 1, "source": "tests"}', b'{"source": "no-such-source"}',
                         b'{"title": NaN}', b'{"title": Infinity}', b"", b"null", b"[]"]),
    )


def batch_mutations(notification_id: int) -> st.SearchStrategy[bytes]:
    base = {"n": notification_id, "c": "push", "p": "normal", "b": "push:9:0", "r": [1, 2]}
    return st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.tuples(st.sampled_from(["n", "c", "p", "b", "r", "a", "resume", "replay", "d"]), wrong_values).filter(
            lambda fv: breaks(*fv)).map(
            lambda fv: json.dumps(base | {fv[0]: fv[1]}).encode()),
        st.sampled_from(["n", "c", "p", "b", "r"]).map(
            lambda f: json.dumps({k: v for k, v in base.items() if k != f}).encode()),
        st.sampled_from([[1, 1], [True], [1.0], [2**32], [0], list(range(1, 50_002))]).map(
            lambda r: json.dumps(base | {"r": r}).encode()),
        st.text(min_size=2, max_size=8).map(lambda k: json.dumps(base | {k: 1}).encode()),
    )


bad_header = st.sampled_from([None, b"", b"soon", b"1e999", b"9" * 400, b"-5", b"\xff\xfe", b"99999999999999"])


HELD_TOPICS = (topic_name(RETRY), topic_name(DEFERRED))


def idle_partition(topic: str) -> int:
    """A partition of a retry or deferred topic with nothing pending. Its bridge pauses a partition at a
    message not yet due, with everything behind it: another test's retry due minutes later would hold a
    fuzzed message as long (by design; see retry_partition). The fuzzing is about the bytes, not that wait."""
    group = next(group for group, topics in bridge_groups().items() if topic in topics)
    busy = {partition for _, partition in uncommitted(group, [topic])}
    return min(set(range(len(partitions_of([topic])))) - busy)


def publish(messages: list[tuple[str, bytes, list]]) -> list[tuple[str, int, int]]:
    """Through a plain librdkafka producer, as another service would; returns each message's position."""
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "message.max.bytes": 4 * 1024 * 1024})
    positions: list = [None] * len(messages)

    def delivered(index):  # noqa: ANN001, ANN202
        def report(err, msg):  # noqa: ANN001, ANN202
            assert err is None, err
            positions[index] = (msg.topic(), msg.partition(), msg.offset())
        return report

    held = {topic: idle_partition(topic) for topic in {m[0] for m in messages} & set(HELD_TOPICS)}
    for index, (topic, value, headers) in enumerate(messages):
        where = {"partition": held[topic]} if topic in held else {}
        producer.produce(topic, value, headers=headers, on_delivery=delivered(index), **where)
    assert producer.flush(30) == 0
    return positions


@pytest.fixture
def target(transactional_db, fans, event_source):
    return reachable_fans(1, "security")[0]


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(max_examples=12, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # each example is slow
@given(data=st.data())
def test_any_bytes_on_any_topic_end_dead_lettered_once_and_valid_events_are_delivered(stack, provider, target, data):
    real = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 1
    bad: list[tuple[str, bytes, list]] = []
    for topic in [topic_name(EVENTS)] * 3:
        bad.append((topic, data.draw(event_mutations(target)), []))
    for topic in data.draw(st.lists(st.sampled_from(BATCH_TOPICS), min_size=2, max_size=3)):
        bad.append((topic, data.draw(batch_mutations(real)), []))
    due_now = str(int(time.time() * 1000)).encode()
    for topic, extra in ((topic_name(RETRY), {"a": 2}), (topic_name(DEFERRED), {"d": "throttled"})):
        if data.draw(st.booleans()):  # a good body with a missing or unreadable not-before header
            header = data.draw(bad_header)
            body = json.dumps({"n": real, "c": "push", "p": "normal", "b": "push:9:0", "r": [1]} | extra).encode()
            bad.append((topic, body, [] if header is None else [(NOT_BEFORE, header)]))
        else:
            bad.append((topic, data.draw(batch_mutations(real)), [(NOT_BEFORE, due_now)]))
    valid = [valid_event(target) for _ in range(2)]
    messages = [bad[0], (topic_name(EVENTS), json.dumps(valid[0]).encode(), []), *bad[1:],
                (topic_name(EVENTS), json.dumps(valid[1]).encode(), [])]
    before = provider.stats()["received"]
    positions = publish(messages)
    bad_positions = [p for p, m in zip(positions, messages, strict=True) if m in bad]

    def letters():  # noqa: ANN202
        found = {}
        for topic, partition, offset in bad_positions:
            found[(topic, partition, offset)] = DeadLetter.objects.filter(topic=topic, partition=partition,
                                                                          offset=offset).count()
        return found

    try:
        wait_until(lambda: all(letters().values()), timeout=60, message="every bad message dead-lettered")
    except AssertionError:
        missing = [(p, m[0], m[1][:120], m[2]) for p, m in zip(positions, messages, strict=True)
                   if m in bad and not letters()[p]]
        raise AssertionError(f"not dead-lettered: {missing}") from None
    for event in valid:
        notification = wait_until(lambda e=event: Notification.objects.filter(idempotency_key=e["idempotency_key"],
                                                                              status="completed").first(),
                                  timeout=60, message="the valid event delivered")
        assert notification.sent == 1, list(Delivery.of_notification(notification.pk).values_list(
            "recipient_id", "channel", "status", "reason"))
    assert provider.stats()["received"] - before == len(valid)
    time.sleep(0.5)  # a message that looped would be dead-lettered again meanwhile
    assert set(letters().values()) == {1}, letters()


@pytest.mark.django_db(transaction=True)
def test_nul_and_deep_events_are_dead_lettered_at_once_and_the_events_behind_them_delivered(stack, provider, target):
    nul = valid_event(target) | {"title": "GOAL\u0000"}
    otp = valid_event(target)
    started = time.monotonic()
    positions = publish([(topic_name(EVENTS), json.dumps(nul).encode(), []), (topic_name(EVENTS), deep(100_000), []),
                         (topic_name(EVENTS), json.dumps(otp).encode(), [])])
    letters = wait_until(lambda: list(DeadLetter.objects.filter(
        topic=topic_name(EVENTS), offset__in=[p[2] for p in positions[:2]], partition__in=[p[1] for p in positions[:2]])
        .order_by("offset")) if DeadLetter.objects.filter(offset__in=[p[2] for p in positions[:2]]).count() >= 2
        else None, timeout=30, message="both dead-lettered")
    dead_lettered_after = time.monotonic() - started
    notification = wait_until(lambda: Notification.objects.filter(idempotency_key=otp["idempotency_key"],
                                                                  status="completed").first(), message="the OTP")
    reasons = " | ".join(letter.reason for letter in letters)
    assert "title: text must not contain NUL" in reasons and "nested deeper than" in reasons, reasons
    assert all(letter.payload_size and letter.payload for letter in letters)
    assert notification.sent == 1
    assert dead_lettered_after < 5, dead_lettered_after
    print(f"dead-lettered {dead_lettered_after:.2f}s after publishing")  # noqa: T201


@pytest.mark.django_db(transaction=True)
def test_every_bridge_group_commits_to_the_end_after_fuzzing(stack, provider, target):
    """Runs after the fuzzing: no partition of any consumed topic is left stalled behind a bad message."""
    marker = valid_event(target)
    publish([(topic_name(EVENTS), json.dumps(marker).encode(), [])])
    wait_until(lambda: Notification.objects.filter(idempotency_key=marker["idempotency_key"], status="completed")
               .exists(), message="the marker event")

    def behind():  # noqa: ANN202
        stalled = {}
        for group, topics in bridge_groups().items():
            stalled |= {(group, *k): v for k, v in uncommitted(group, topics).items()}
        return stalled

    wait_until(lambda: not behind(), timeout=30, interval=2, message="every group committed to the end")


@pytest.mark.django_db(transaction=True)
def test_a_rejected_event_keeps_its_payload_and_once_fixed_replays_through_the_same_checks(stack, provider, target):
    from django.core.management import call_command

    from apps.delivery.dead_letters import header_bytes, payload_bytes

    broken = valid_event(target) | {"title": "GOAL\u0000"}
    binary = b"\xff\xfe\x00 not text"
    positions = publish([(topic_name(EVENTS), json.dumps(broken).encode(), [("trace", b"t-1")]),
                         (topic_name(EVENTS), binary, [("raw", b"\x00\xff")])])

    def letter_at(position):  # noqa: ANN001, ANN202
        topic, partition, offset = position
        return DeadLetter.objects.filter(topic=topic, partition=partition, offset=offset).first()

    letter = wait_until(lambda: letter_at(positions[0]), message="the broken event dead-lettered")
    raw = wait_until(lambda: letter_at(positions[1]), message="the binary event dead-lettered")
    assert letter.reason_kind == "invalid" and "title" in letter.reason
    assert json.loads(payload_bytes(letter)) == broken and header_bytes(letter) == [("trace", b"t-1")]
    assert raw.payload_encoding == "base64" and payload_bytes(raw) == binary
    assert header_bytes(raw) == [("raw", b"\x00\xff")]

    before = DeadLetter.objects.count()
    call_command("replay_dead_letters", str(raw.pk))  # still bad: dead-lettered again, once
    wait_until(lambda: DeadLetter.objects.count() == before + 1, message="the unfixed replay dead-lettered")

    letter.payload = json.dumps(broken | {"title": "GOAL"})  # what an operator does in the admin
    letter.save(update_fields=["payload"])
    call_command("replay_dead_letters", str(letter.pk))
    notification = wait_until(lambda: Notification.objects.filter(idempotency_key=broken["idempotency_key"],
                                                                  status="completed").first(), message="the fix")
    assert notification.sent == 1 and notification.title == "GOAL"
    call_command("replay_dead_letters", str(letter.pk))  # a second replay: same idempotency key, nothing new
    time.sleep(1)
    assert Notification.objects.filter(idempotency_key=broken["idempotency_key"]).count() == 1


def test_a_rejected_events_payload_is_editable_in_the_admin(admin_client, db):
    letter = DeadLetter.objects.create(topic=topic_name(EVENTS), reason="invalid event: title: NUL", payload="{}",
                                       reason_kind="invalid")
    page = admin_client.get(f"/admin/delivery/deadletter/{letter.pk}/change/")
    assert page.status_code == 200 and b'name="payload"' in page.content
    batch = DeadLetter.objects.create(topic="send.push", reason="gave up", recipient_ids=[1], channel="push")
    page = admin_client.get(f"/admin/delivery/deadletter/{batch.pk}/change/")
    assert page.status_code == 200 and b'name="payload"' not in page.content
