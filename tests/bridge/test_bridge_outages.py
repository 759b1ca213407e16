"""The running bridges through a PostgreSQL restart: every database connection of the run is terminated (as a
failover does), and a bad message that comes after it is still dead-lettered, on every partition. A dead letter
is a bridge's only database write; before, the connection that write had broken was reused for ever, so the
first bad message after a restart stalled its partition."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from django.conf import settings

from apps.delivery.models import DeadLetter
from apps.harness.chaos.services import terminate_database_connections
from apps.streaming.lag import partitions_of
from apps.streaming.topics import channel_topic
from tests.conftest import wait_until


def unsigned_batch_on_every_partition(topic: str) -> list[tuple[int, int]]:
    """One unsigned batch message on each partition; their (partition, offset)."""
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    positions: list[tuple[int, int]] = []
    for partition in partitions_of([topic]):
        producer.produce(topic, b'{"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1]}',
                         partition=partition.partition, key=uuid.uuid4().bytes,
                         on_delivery=lambda err, msg: positions.append((msg.partition(), msg.offset())))
    assert producer.flush(30) == 0
    return positions


def not_dead_lettered(topic: str, positions: list[tuple[int, int]]) -> set[tuple[int, int]]:
    offsets = DeadLetter.objects.filter(topic=topic).values_list("partition", "offset")
    return set(positions) - set(offsets)


@pytest.mark.django_db(transaction=True)
def test_bad_messages_after_a_database_restart_are_still_dead_lettered(stack):
    topic = channel_topic("push", "normal")
    before = unsigned_batch_on_every_partition(topic)  # every send bridge opens its database connection
    wait_until(lambda: not not_dead_lettered(topic, before), timeout=60, message="the first round dead-lettered")
    assert terminate_database_connections() > 0
    after = unsigned_batch_on_every_partition(topic)
    try:
        wait_until(lambda: not not_dead_lettered(topic, after), timeout=60, message="the round after the restart")
    except AssertionError:
        missing = sorted(not_dead_lettered(topic, after))
        raise AssertionError(f"not dead-lettered (partition, offset): {missing}") from None
    reasons = set(DeadLetter.objects.filter(topic=topic, partition__in=[p for p, _ in after],
                                            offset__in=[o for _, o in after]).values_list("reason", flat=True))
    assert all("not signed" in reason for reason in reasons), reasons
