"""Topic names and partition counts. Every run may prefix them (KAFKA_TOPIC_PREFIX)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from apps.preferences.models import Channel, Priority

EVENTS = "notify.events"
RETRY = "notify.retry"
DEFERRED = "notify.deferred"
DLQ = "notify.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int


def topic_name(base: str) -> str:
    return f"{settings.KAFKA_TOPIC_PREFIX}{base}"


def channel_topic(channel: str, priority: str) -> str:
    """Recipient batches for one channel at one priority, e.g. notify.push.high."""
    return topic_name(f"notify.{channel}.{priority}")


def all_topics() -> list[TopicSpec]:
    partitions = settings.KAFKA_PARTITIONS
    specs = [
        TopicSpec(topic_name(EVENTS), settings.KAFKA_EVENTS_PARTITIONS),
        TopicSpec(topic_name(RETRY), partitions),
        TopicSpec(topic_name(DEFERRED), partitions),
        TopicSpec(topic_name(DLQ), 1),
    ]
    specs += [TopicSpec(channel_topic(c, p), partitions) for c in Channel.values for p in Priority.values]
    return specs


def bridge_groups() -> dict[str, list[str]]:
    """The bridges' consumer groups and the topics each consumes (run_bridge --role ...)."""
    prefix = settings.KAFKA_TOPIC_PREFIX
    groups = {f"{prefix}bridge.events": [topic_name(EVENTS)], f"{prefix}bridge.retry": [topic_name(RETRY)]}
    for priority in Priority.values:
        groups[f"{prefix}bridge.send.{priority}"] = [channel_topic(c, priority) for c in Channel.values]
    return groups
