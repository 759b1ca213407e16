"""Kafka clients: admin (ensure topics, check the broker) and the producer. The consumer loop is in consumer.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from apps.core.outages import BrokerUnavailable

from .local_broker import bootstrap_servers
from .security import security_config
from .topics import TopicSpec, all_topics

log = logging.getLogger(__name__)


def base_config() -> dict:
    """What every client of ours starts from: the brokers, and how to authenticate (security.py)."""
    return {"bootstrap.servers": bootstrap_servers(), "client.id": "notifications", **security_config()}


def topic_config() -> dict[str, str]:
    """The topic configs ensure_topics sets (Tansu ignores them)."""
    return {"min.insync.replicas": str(settings.KAFKA_MIN_INSYNC_REPLICAS)}


def ensure_topics(specs: Iterable[TopicSpec] | None = None, timeout: float = 10.0) -> list[str]:
    """Create missing topics with their partition counts, KAFKA_REPLICATION_FACTOR and
    KAFKA_MIN_INSYNC_REPLICAS; returns the names created.

    Topics are created explicitly because some brokers (Tansu) auto-create unknown topics with
    4 partitions on a metadata request.
    """
    specs = list(specs if specs is not None else all_topics())
    admin = AdminClient(base_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka broker at {bootstrap_servers()} is unreachable: {exc}") from None
    missing = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                        config=topic_config() | s.config) for s in specs if s.name not in existing]
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout).items() if missing else []:
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def delete_topics(names: list[str], timeout: float = 10.0) -> None:
    if not names:
        return
    admin = AdminClient(base_config())
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            future.result()
        except KafkaException:
            pass


def check_broker(timeout: float = 3.0) -> None:
    # A probe says what is down in its answer; librdkafka's own line per failed connect would repeat it
    # 20 times a second for as long as the broker is gone.
    admin = AdminClient({**base_config(), "log_level": 2})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        raise BrokerUnavailable(f"Kafka broker at {bootstrap_servers()} is unreachable") from None


class EventProducer:
    """A thin producer: durable acks, per-key ordering, and a flush that raises on failure."""

    def __init__(self, linger_ms: int = 5) -> None:
        self._errors: list[str] = []
        self._producer = Producer({
            **base_config(),
            "acks": "all",
            "linger.ms": linger_ms,
            "message.max.bytes": 4 * 1024 * 1024,
            "queue.buffering.max.kbytes": 256 * 1024,
        })

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: dict | None = None,
                partition: int | None = None) -> None:
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value, key=key, headers=headers, on_delivery=self._on_delivery, **where)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every message is acknowledged; raise if any was not."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise BrokerUnavailable(f"{remaining} message(s) not acknowledged by {bootstrap_servers()}")
        if self._errors:
            errors, self._errors = self._errors, []
            raise BrokerUnavailable(f"{len(errors)} message(s) failed: {errors[0]}")


