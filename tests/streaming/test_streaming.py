import subprocess
import sys
import time
import uuid

import pytest

from apps.streaming.client import EventProducer, ensure_topics
from apps.streaming.consumer import ConsumerOptions, make_consumer, run_consumer
from apps.streaming.topics import TopicSpec
from tests.kafka_offsets import uncommitted


class Outage(ConnectionError):
    pass


@pytest.fixture
def topic(broker):
    name = f"test.roundtrip.{uuid.uuid4().hex[:6]}"
    ensure_topics([TopicSpec(name, 4)])
    return name


def produce(topic: str, values: list[bytes]) -> None:
    producer = EventProducer()
    for i, value in enumerate(values):
        producer.produce(topic, value, key=str(i).encode())
    producer.flush()


def consume_all(group: str, topic: str, expected: int, fail_first: bool = False, handle_one=None,
                rejected: list | None = None) -> list[bytes]:
    """Run the consumer loop until `expected` messages were handed on or rejected."""
    seen: list[bytes] = []
    rejected = [] if rejected is None else rejected
    calls = {"n": 0}

    def handle(messages):
        calls["n"] += 1
        if fail_first and calls["n"] == 1:
            raise Outage("hand-off failed")
        for message in messages:
            if handle_one:
                handle_one(message)
            seen.append(message.value())

    def reject(message, exc):
        rejected.append((message.value(), str(exc)))

    run_consumer(ConsumerOptions(group, [topic], batch_size=5, poll_timeout=0.2, retry_backoff=0.05), handle,
                 reject, lambda exc: isinstance(exc, Outage), should_stop=lambda: len(seen) + len(rejected) >= expected)
    return seen


def test_round_trip_with_consumer_group_and_manual_commits(topic):
    produce(topic, [f"m{i}".encode() for i in range(20)])
    group = f"g-{uuid.uuid4().hex[:6]}"
    assert sorted(consume_all(group, topic, 20)) == sorted(f"m{i}".encode() for i in range(20))
    produce(topic, [b"later"])
    # committed offsets: the same group now gets only the new message
    assert consume_all(group, topic, 1) == [b"later"]


def test_failed_hand_off_is_retried_not_skipped(topic):
    produce(topic, [f"r{i}".encode() for i in range(10)])
    seen = consume_all(f"g-{uuid.uuid4().hex[:6]}", topic, 10, fail_first=True)
    assert sorted(set(seen)) == sorted(f"r{i}".encode() for i in range(10))


def test_a_poison_message_is_rejected_once_and_the_partition_moves_on(topic):
    """Whatever a handler raises for one message (not an outage) rejects that message alone."""
    values = [b"ok-0", b"ok-1", b"poison-nul", b"ok-3", b"poison-deep", b"ok-5", b"ok-6"]
    produce(topic, values)
    group = f"g-{uuid.uuid4().hex[:6]}"
    attempts: dict[bytes, int] = {}

    def handle_one(message):
        attempts[message.value()] = attempts.get(message.value(), 0) + 1
        if message.value() == b"poison-nul":
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        if message.value() == b"poison-deep":
            raise RecursionError("maximum recursion depth exceeded")

    rejected: list = []
    seen = consume_all(group, topic, len(values), handle_one=handle_one, rejected=rejected)
    assert sorted(seen) == sorted(v for v in values if v.startswith(b"ok"))
    assert sorted(rejected) == [(b"poison-deep", "maximum recursion depth exceeded"),
                                (b"poison-nul", "A string literal cannot contain NUL (0x00) characters.")]
    assert attempts[b"poison-nul"] == attempts[b"poison-deep"] == 1
    assert uncommitted(group, [topic]) == {}
    produce(topic, [b"later"])
    assert consume_all(group, topic, 1) == [b"later"]


def test_an_outage_mid_batch_rewinds_from_the_failing_message_only(topic, caplog):
    produce(topic, [f"o{i}".encode() for i in range(10)])
    down = {"started": False, "left": 3}
    handed: list[bytes] = []

    def handle_one(message):
        # Redis goes at o4 and stays gone for three attempts, whichever partition's message comes next.
        down["started"] = down["started"] or message.value() == b"o4"
        if down["started"] and down["left"]:
            down["left"] -= 1
            raise Outage("redis gone")
        handed.append(message.value())

    group = f"g-{uuid.uuid4().hex[:6]}"
    rejected: list = []
    with caplog.at_level("WARNING", logger="apps.streaming.consumer"):
        consume_all(group, topic, 10, handle_one=handle_one, rejected=rejected)
    assert rejected == []
    outage_lines = [r.getMessage() for r in caplog.records if r.name == "apps.streaming.consumer"]
    assert len(outage_lines) == 2, outage_lines  # three failed attempts: logged when it starts and when it ends
    assert "hand-off failing (Outage: redis gone)" in outage_lines[0] and "recovered" in outage_lines[1]
    assert sorted(handed) == sorted(f"o{i}".encode() for i in range(10))  # each exactly once
    assert uncommitted(group, [topic]) == {}


def test_a_hand_off_failing_past_the_grace_period_stops_the_consumer(topic):
    """Messages keep arriving (the broker is fine) but every hand-off meets the outage: after the grace period
    the consumer gives up (the bridge exits non-zero and its supervisor restarts it), never retrying for ever."""
    from apps.streaming.consumer import DependencyGone

    produce(topic, [b"stuck"])
    started = time.monotonic()

    def handle(messages):
        for _ in messages:
            raise Outage("postgres gone")

    with pytest.raises(DependencyGone, match="hand-off failing: Outage: postgres gone"):
        run_consumer(ConsumerOptions(f"g-{uuid.uuid4().hex[:6]}", [topic], poll_timeout=0.2, retry_backoff=0.05,
                                     grace_seconds=1.0), handle, lambda message, exc: None,
                     lambda exc: isinstance(exc, Outage), should_stop=lambda: time.monotonic() - started > 30)
    assert time.monotonic() - started < 30


def test_topics_are_created_with_their_partition_counts(broker):
    from apps.streaming.topics import EVENTS, channel_topic, topic_name

    consumer = make_consumer("metadata-check")
    metadata = consumer.list_topics(timeout=5)
    consumer.close()
    from django.conf import settings

    assert len(metadata.topics[channel_topic("push", "normal")].partitions) == settings.KAFKA_PARTITIONS
    assert len(metadata.topics[topic_name(EVENTS)].partitions) == settings.KAFKA_EVENTS_PARTITIONS


@pytest.mark.parametrize("variable, value", [
    ("REDIS_URL", "not-a-url"), ("DATABASE_URL", "mysql://x"), ("KAFKA_PARTITIONS", "lots"),
    ("DJANGO_DEBUG", "maybe"), ("KAFKA_MIN_INSYNC_REPLICAS", "2"), ("KAFKA_REPLICATION_FACTOR", "0"),
])
def test_bad_env_value_stops_start_up_with_one_line(variable, value):
    result = subprocess.run([sys.executable, "manage.py", "check"], env={"PATH": "/usr/bin:/bin", variable: value},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "expected" in lines[0]


def test_topics_take_replication_factor_and_min_insync_replicas_from_settings(broker, settings, monkeypatch):
    from apps.streaming import client

    name = f"test.replicas.{uuid.uuid4().hex[:6]}"
    asked = []
    real = client.AdminClient.create_topics
    monkeypatch.setattr(client.AdminClient, "create_topics",
                        lambda self, topics, **kw: asked.extend(topics) or real(self, topics, **kw))
    assert ensure_topics([TopicSpec(name, 2)]) == [name]  # Tansu accepts (and ignores) the config
    assert (asked[0].replication_factor, asked[0].config) == (1, {"min.insync.replicas": "1"})

    class Admin:  # a three-broker cluster's answer, without one
        def __init__(self, config):
            pass

        def list_topics(self, timeout):
            return type("Metadata", (), {"topics": {}})()

        def create_topics(self, topics, operation_timeout):
            asked[:] = topics
            return {}

    settings.KAFKA_REPLICATION_FACTOR, settings.KAFKA_MIN_INSYNC_REPLICAS = 3, 2
    monkeypatch.setattr(client, "AdminClient", Admin)
    ensure_topics([TopicSpec(name, 2)])
    assert (asked[0].replication_factor, asked[0].config) == (3, {"min.insync.replicas": "2"})
    # notify.dlq's copies expire (an erasure cannot rewrite them): retention.ms from KAFKA_DLQ_RETENTION_HOURS.
    from apps.streaming.topics import DLQ, all_topics, topic_name

    settings.KAFKA_DLQ_RETENTION_HOURS = 48
    ensure_topics(all_topics())
    configs = {topic.topic: topic.config for topic in asked}
    assert configs[topic_name(DLQ)] == {"min.insync.replicas": "2", "retention.ms": str(48 * 3_600_000)}
    assert all("retention.ms" not in config for topic, config in configs.items() if topic != topic_name(DLQ))


def test_unreachable_broker_is_named(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    from apps.core.outages import BrokerUnavailable
    from apps.streaming.client import check_broker

    with pytest.raises(BrokerUnavailable, match="127.0.0.1:1"):
        check_broker(timeout=1)
