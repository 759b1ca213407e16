"""Consumer lag per group, topic and partition: end offset minus the group's committed offset.

End offsets come from what a consumer fetches (the high watermark in fetch responses), not from a
ListOffsets request: that is right on Apache Kafka and on Tansu alike, whose ListOffsets answer
is wrong (see DESIGN.md). A throwaway consumer, outside the group and never committing, is
assigned every partition at its end and polled until each partition's fetched watermark is known.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from apps.core.outages import BrokerUnavailable

from .client import base_config

UNKNOWN = -1


class GroupNotFound(LookupError):
    pass


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int  # -1: nothing committed yet (the group starts from the earliest offset)
    end: int
    lag: int


def existing_groups(timeout: float = 5.0) -> set[str]:
    admin = AdminClient(base_config())
    try:
        return {g.group_id for g in admin.list_consumer_groups(request_timeout=timeout).result().valid}
    except KafkaException as exc:
        raise BrokerUnavailable(f"listing consumer groups failed: {exc}") from None


def partitions_of(topics: list[str], timeout: float = 5.0) -> list[TopicPartition]:
    admin = AdminClient(base_config())
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(str(exc)) from None
    return [TopicPartition(topic, p) for topic in topics if topic in metadata.topics
            for p in sorted(metadata.topics[topic].partitions)]


def end_offsets(partitions: list[TopicPartition], timeout: float = 5.0) -> dict[tuple[str, int], int]:
    consumer = Consumer({**base_config(), "group.id": f"lag-probe-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "latest",
                         "fetch.max.bytes": 1 << 20, "max.partition.fetch.bytes": 16 << 10})
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in partitions])
        ends: dict[tuple[str, int], int] = {}
        pending = list(partitions)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            consumer.consume(500, 0.1)
            unknown = []
            for tp in pending:
                high = consumer.get_watermark_offsets(tp, cached=True)[1]
                if high >= 0:
                    ends[(tp.topic, tp.partition)] = high
                else:
                    unknown.append(tp)
            pending = unknown
        return ends
    finally:
        consumer.close()


def group_lag(group: str, topics: list[str], timeout: float = 5.0) -> list[PartitionLag]:
    """Raises GroupNotFound if the group is not listed by the broker and has committed nothing.

    (Tansu answers ListGroups with an empty list, so committed offsets are the evidence there.)
    """
    partitions = partitions_of(topics, timeout)
    reader = Consumer({**base_config(), "group.id": group, "enable.auto.commit": False})
    try:
        committed = {(tp.topic, tp.partition): tp.offset for tp in reader.committed(partitions, timeout=timeout)}
    except KafkaException as exc:
        raise BrokerUnavailable(f"reading offsets of {group} failed: {exc}") from None
    finally:
        reader.close()
    if all(offset < 0 for offset in committed.values()) and group not in existing_groups(timeout):
        raise GroupNotFound(f"consumer group {group!r} does not exist (nothing committed on {', '.join(topics)})")
    ends = end_offsets(partitions, timeout)
    rows = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        done = committed.get(key, UNKNOWN)
        done = done if done >= 0 else UNKNOWN
        end = ends.get(key, UNKNOWN)
        lag = max(end - max(done, 0), 0) if end >= 0 else 0
        rows.append(PartitionLag(group, tp.topic, tp.partition, done, end, lag))
    return rows
