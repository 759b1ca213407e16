"""Topic names and partition counts. Every run may prefix them (KAFKA_TOPIC_PREFIX)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from apps.core.channels import Channel, Priority

EVENTS = "notify.events"
RETRY = "notify.retry"
DEFERRED = "notify.deferred"
DLQ = "notify.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)  # beside client.topic_config(), at creation


def topic_name(base: str) -> str:
    return f"{settings.KAFKA_TOPIC_PREFIX}{base}"


def channel_topic(channel: str, priority: str) -> str:
    """Recipient batches for one channel at one priority, e.g. notify.push.high."""
    return topic_name(f"notify.{channel}.{priority}")


DEFERRAL_PERIOD_SECONDS = 2 * 86400


def deferred_partition(due: float) -> int:
    """The notify.deferred partition for a message due at `due` (epoch seconds).

    Partitions are time slots of 48 h / partitions. Every deferral is under 24 h, so within one
    partition later messages are never due earlier than those before them, beyond one slot's width:
    a paused partition does not hold back a message due sooner than its head.
    """
    partitions = settings.KAFKA_DEFERRED_PARTITIONS
    return int(due // (DEFERRAL_PERIOD_SECONDS / partitions)) % partitions


RETRY_TIER_FLOOR_SECONDS = 5.0  # shorter retries are held by Celery (RETRY_HOLD_SECONDS) and never come here
RETRY_TIERS = 10  # delays doubling from 5 s: the last tier takes 2,560 s and over (Retry-After is capped at 1 h)


def retry_partition(delay: float, key: int) -> int:
    """The notify.retry partition for a batch retried after `delay` seconds.

    A paused partition holds every message behind its head, so a partition takes only delays of one
    tier (each tier twice the one before): a retry waits at most its own delay again behind the
    messages before it, never a 10 s retry behind an hour's Retry-After. Within a tier, `key` spreads
    batches over the tier's partitions. With fewer partitions than tiers, neighbouring tiers share.
    """
    partitions = settings.KAFKA_PARTITIONS
    tier = 0
    while tier < RETRY_TIERS - 1 and delay > RETRY_TIER_FLOOR_SECONDS * 2 ** (tier + 1):
        tier += 1
    first = tier * partitions // RETRY_TIERS
    width = max((tier + 1) * partitions // RETRY_TIERS - first, 1)
    return first + key % width


def all_topics() -> list[TopicSpec]:
    partitions = settings.KAFKA_PARTITIONS
    specs = [
        TopicSpec(topic_name(EVENTS), settings.KAFKA_EVENTS_PARTITIONS),
        TopicSpec(topic_name(RETRY), partitions),
        TopicSpec(topic_name(DEFERRED), settings.KAFKA_DEFERRED_PARTITIONS),
        # An erasure cannot rewrite the copies here (apps/delivery/dead_letter_erasure.py): they expire instead.
        TopicSpec(topic_name(DLQ), 1, {"retention.ms": str(settings.KAFKA_DLQ_RETENTION_HOURS * 3_600_000)}),
    ]
    specs += [TopicSpec(channel_topic(c, p), settings.KAFKA_HIGH_PARTITIONS if p == Priority.HIGH else partitions)
              for c in Channel.values for p in Priority.values]
    return specs


def bridge_groups() -> dict[str, list[str]]:
    """The bridges' consumer groups and the topics each consumes (run_bridge --role ...)."""
    prefix = settings.KAFKA_TOPIC_PREFIX
    groups = {f"{prefix}bridge.events": [topic_name(EVENTS)], f"{prefix}bridge.retry": [topic_name(RETRY)],
              f"{prefix}bridge.deferred": [topic_name(DEFERRED)]}
    for priority in Priority.values:
        groups[f"{prefix}bridge.send.{priority}"] = [channel_topic(c, priority) for c in Channel.values]
    return groups
