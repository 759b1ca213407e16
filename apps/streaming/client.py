"""Kafka clients: admin (ensure topics), producer, and a consumer loop with manual commits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from .local_broker import bootstrap_servers
from .topics import TopicSpec, all_topics

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    pass


class DependencyGone(RuntimeError):
    """A consumer could not hand on, or reach the broker, for longer than its grace period."""


def _base_config() -> dict:
    return {"bootstrap.servers": bootstrap_servers(), "client.id": "notifications"}


def ensure_topics(specs: Iterable[TopicSpec] | None = None, timeout: float = 10.0) -> list[str]:
    """Create missing topics with their partition counts; returns the names created.

    Topics are created explicitly because some brokers (Tansu) auto-create unknown topics with
    4 partitions on a metadata request.
    """
    specs = list(specs if specs is not None else all_topics())
    admin = AdminClient(_base_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka broker at {bootstrap_servers()} is unreachable: {exc}") from None
    missing = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1) for s in specs
               if s.name not in existing]
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
    admin = AdminClient(_base_config())
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            future.result()
        except KafkaException:
            pass


def check_broker(timeout: float = 3.0) -> None:
    admin = AdminClient(_base_config())
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        raise BrokerUnavailable(f"Kafka broker at {bootstrap_servers()} is unreachable") from None


class EventProducer:
    """A thin producer: durable acks, per-key ordering, and a flush that raises on failure."""

    def __init__(self, linger_ms: int = 5) -> None:
        self._errors: list[str] = []
        self._producer = Producer({
            **_base_config(),
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


@dataclass
class ConsumerOptions:
    group_id: str
    topics: list[str]
    batch_size: int = 100
    poll_timeout: float = 0.5
    retry_backoff: float = 1.0
    hold_seconds: float = 5.0  # with due_at: hand on messages due within this long
    grace_seconds: float = 120.0  # give up (DependencyGone) after failing this long without a break
    now: Callable[[], float] = time.time  # the clock due times are read against
    # How long the broker may hold a fetch that has no data yet. Tansu holds it the whole time even when
    # a message arrives meanwhile, so it bounds a hop's latency; short waits cost the broker CPU when idle.
    fetch_wait_ms: int = 500


def make_consumer(group_id: str, **extra) -> Consumer:
    return Consumer({
        **_base_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
        "partition.assignment.strategy": "cooperative-sticky",
        **extra,
    })


def run_consumer(
    options: ConsumerOptions,
    handle: Callable[[list[Message]], None],
    should_stop: Callable[[], bool] = lambda: False,
    due_at: Callable[[Message], float] | None = None,
) -> None:
    """Consume in batches; commit a batch's offsets only after `handle` returned.

    If `handle` raises, the batch is neither committed nor skipped: each partition is rewound to
    the batch's first offset and tried again after a pause, so a dependency outage stalls the
    stream instead of losing it. Per-message problems (bad input) are `handle`'s to dead-letter.

    With `due_at` (a message's not-before time, epoch seconds), a message that is not due within
    options.hold_seconds is not handed on: its partition is rewound to it and paused until then, so
    no process sleeps and the other partitions flow. Messages in one partition are kept in order.
    """
    health = _BrokerHealth(options.grace_seconds)
    consumer = make_consumer(options.group_id, error_cb=health.on_error, **{"fetch.wait.max.ms": options.fetch_wait_ms})
    consumer.subscribe(options.topics)
    paused: dict[tuple[str, int], float] = {}
    failures = 0
    try:
        while not should_stop():
            if paused:
                _resume_due(consumer, paused, options.now())
            messages = _next_batch(consumer, options)
            health.check()
            messages = [m for m in messages if not _is_error(m)]
            if not messages:
                continue
            health.ok()
            due, postponed = _split_due(messages, due_at, options.hold_seconds, options.now())
            try:
                if due:
                    handle(due)
            except Exception as exc:
                failures += 1
                log.exception("hand-off failed; rewinding %d message(s), attempt %d", len(messages), failures)
                _rewind(consumer, messages)
                health.failing(f"hand-off failing: {type(exc).__name__}: {exc}"[:300])
                time.sleep(min(options.retry_backoff * failures, 10.0))
                continue
            failures = 0
            health.ok()
            if due:
                consumer.commit(offsets=_next_offsets(due), asynchronous=False)
            for (topic, partition), (offset, at) in postponed.items():
                position = TopicPartition(topic, partition, offset)
                try:
                    consumer.pause([position])
                    consumer.seek(position)
                    paused[(topic, partition)] = at - options.hold_seconds
                except KafkaException as exc:  # revoked meanwhile: its new owner starts from the commit
                    log.info("pause of %s[%d] skipped: %s", topic, partition, exc)
    finally:
        consumer.close()


def _next_batch(consumer: Consumer, options: ConsumerOptions) -> list[Message]:
    """Up to batch_size messages, returned as soon as one is there.

    consume(n, timeout) waits for n messages or the whole timeout, which would add the poll timeout to
    every hop of a lone message (an OTP). So: take what is already fetched; if nothing, wait for one
    message, then take whatever else has arrived with it.
    """
    messages = consumer.consume(options.batch_size, 0)
    if messages:
        return messages
    first = consumer.poll(options.poll_timeout)
    if first is None:
        return []
    return [first, *consumer.consume(options.batch_size - 1, 0)] if options.batch_size > 1 else [first]


class _BrokerHealth:
    """Tracks how long the consumer has been unable to work; raises DependencyGone past the grace period."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.down_since: float | None = None
        self.reason = ""
        self.next_probe = 0.0
        self.broker_errors = 0

    def ok(self) -> None:
        self.down_since = None

    def failing(self, reason: str) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since, self.reason = now, reason
        elif now - self.down_since > self.grace_seconds:
            raise DependencyGone(f"{reason} for more than {self.grace_seconds:g}s")

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (runs inside poll/consume)."""
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.broker_errors += 1

    def check(self) -> None:
        if self.broker_errors:
            self.broker_errors = 0
            self.failing(f"Kafka broker at {bootstrap_servers()} unreachable")
        elif self.down_since is not None and self.reason.startswith("Kafka") and time.monotonic() > self.next_probe:
            self.next_probe = time.monotonic() + 5.0
            try:
                check_broker(timeout=2.0)
                self.ok()
            except BrokerUnavailable:
                self.failing(self.reason)


def _split_due(messages: list[Message], due_at: Callable[[Message], float] | None, hold_seconds: float,
               now: float) -> tuple[list[Message], dict[tuple[str, int], tuple[int, float]]]:
    """The messages to hand on now, and per partition the first one that must wait (offset, due time)."""
    if due_at is None:
        return messages, {}
    horizon = now + hold_seconds
    due: list[Message] = []
    postponed: dict[tuple[str, int], tuple[int, float]] = {}
    for message in messages:
        position = (message.topic(), message.partition())
        if position in postponed:
            continue
        at = due_at(message)
        if at > horizon:
            postponed[position] = (message.offset(), at)
        else:
            due.append(message)
    return due, postponed


def _resume_due(consumer: Consumer, paused: dict[tuple[str, int], float], now: float) -> None:
    for position, at in list(paused.items()):
        if at <= now:
            del paused[position]
            try:
                consumer.resume([TopicPartition(*position)])
            except KafkaException as exc:
                log.info("resume of %s[%d] skipped: %s", *position, exc)


def header(message: Message, name: str) -> str | None:
    for key, value in message.headers() or []:
        if key == name:
            return value.decode() if isinstance(value, bytes) else value
    return None


def _is_error(message: Message) -> bool:
    error = message.error()
    if error is None:
        return False
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error: %s", error.str())
    return True


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    latest: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        latest[key] = max(latest.get(key, -1), m.offset())
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in latest.items()]


def _rewind(consumer: Consumer, messages: list[Message]) -> None:
    earliest: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        earliest[key] = min(earliest.get(key, m.offset()), m.offset())
    for (topic, partition), offset in earliest.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:  # partition revoked meanwhile: its new owner resumes from the commit
            log.info("rewind of %s[%d] skipped: %s", topic, partition, exc)
