import subprocess
import sys
import uuid

import pytest

from apps.streaming.client import ConsumerOptions, EventProducer, ensure_topics, make_consumer, run_consumer
from apps.streaming.topics import TopicSpec


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


def consume_all(group: str, topic: str, expected: int, fail_first: bool = False) -> list[bytes]:
    seen: list[bytes] = []
    calls = {"n": 0}

    def handle(messages):
        calls["n"] += 1
        if fail_first and calls["n"] == 1:
            raise RuntimeError("hand-off failed")
        seen.extend(m.value() for m in messages)

    run_consumer(ConsumerOptions(group, [topic], batch_size=5, poll_timeout=0.2), handle,
                 should_stop=lambda: len(seen) >= expected)
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
    ("DJANGO_DEBUG", "maybe"),
])
def test_bad_env_value_stops_start_up_with_one_line(variable, value):
    result = subprocess.run([sys.executable, "manage.py", "check"], env={"PATH": "/usr/bin:/bin", variable: value},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "expected" in lines[0]


def test_unreachable_broker_is_named(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    from apps.streaming.client import BrokerUnavailable, check_broker

    with pytest.raises(BrokerUnavailable, match="127.0.0.1:1"):
        check_broker(timeout=1)
