"""The consumer loop: batches with manual commits, poison messages dead-lettered, outages waited out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings

from apps.core.outages import BrokerUnavailable

from .client import base_config, check_broker
from .local_broker import bootstrap_servers

log = logging.getLogger(__name__)


class DependencyGone(RuntimeError):
    """A consumer could not hand on, or reach the broker, for longer than its grace period."""


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
        **base_config(),
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
    handle: Callable[[Iterator[Message]], None],
    reject: Callable[[Message, Exception], None],
    is_outage: Callable[[Exception], bool],
    should_stop: Callable[[], bool] = lambda: False,
    due_at: Callable[[Message], float] | None = None,
) -> None:
    """Consume in batches; commit offsets only for messages that `handle` has handed on.

    `handle` iterates the messages it is given and hands each on. Whatever it raises is blamed on
    the message it was handling, unless `is_outage` says a dependency is down:
    - a bad message (any other exception) goes to `reject` (a dead letter, with the exception as
      the reason) and `handle` is called again with the messages after it, so one poison message
      can never stop a partition;
    - an outage commits what was handed on, rewinds each partition to its first message not handed
      on, and tries again after a backoff, logged once per outage rather than once per attempt.
      A stream stalls while a dependency is down; it never loses a message.

    With `due_at` (a message's not-before time, epoch seconds), a message that is not due within
    options.hold_seconds is not handed on: its partition is rewound to it and paused until then, so
    no process sleeps and the other partitions flow. Messages in one partition are kept in order.
    """
    health = _BrokerHealth(options.grace_seconds)
    consumer = make_consumer(options.group_id, error_cb=health.on_error, **{"fetch.wait.max.ms": options.fetch_wait_ms})
    consumer.subscribe(options.topics)
    paused: dict[tuple[str, int], float] = {}
    outage = _Outage(options.retry_backoff)
    try:
        while not should_stop():
            if paused:
                _resume_due(consumer, paused, options.now())
            messages = _next_batch(consumer, options)
            health.check()
            messages = [m for m in messages if not _is_error(m)]
            if not messages:
                continue
            health.broker_ok()  # not ok(): a hand-off failing since before must still reach the grace period
            due, postponed = _split_due(messages, due_at, options.hold_seconds, options.now())
            handled, error = _hand_on(due, handle, reject, is_outage)
            if handled:
                consumer.commit(offsets=_next_offsets(due[:handled]), asynchronous=False)
            if error is not None:
                handed = {id(m) for m in due[:handled]}
                _rewind(consumer, [m for m in messages if id(m) not in handed])
                health.failing(f"hand-off failing: {type(error).__name__}: {error}"[:300])
                time.sleep(outage.failed(error))
                continue
            outage.ended()
            health.ok()
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


class _Cursor:
    """Yields messages from `start` on and remembers which one is being handled."""

    def __init__(self, messages: list[Message], start: int) -> None:
        self.messages, self.start = messages, start
        self.current: int | None = None

    def __iter__(self) -> Iterator[Message]:
        for index in range(self.start, len(self.messages)):
            self.current = index
            yield self.messages[index]
        self.current = None


def _hand_on(due: list[Message], handle: Callable[[Iterator[Message]], None],
             reject: Callable[[Message, Exception], None],
             is_outage: Callable[[Exception], bool]) -> tuple[int, Exception | None]:
    """How many of `due` were dealt with (handed on or rejected), and the outage that stopped the rest."""
    start = 0
    while start < len(due):
        cursor = _Cursor(due, start)
        try:
            handle(iter(cursor))
            return len(due), None
        except Exception as exc:  # noqa: BLE001 (any exception is either an outage or this message's fault)
            index = cursor.current
            if index is None or is_outage(exc):
                # Raised outside any one message (setting up, or after the last): not a message's fault.
                return (start if index is None else index), exc
            try:
                reject(due[index], exc)
            except Exception as reject_error:  # noqa: BLE001 (cannot record the dead letter: retry it later)
                return index, reject_error
            start = index + 1
    return len(due), None


class _Outage:
    """Backoff between attempts while a dependency is down; one log line when it starts and one when it ends."""

    def __init__(self, base_seconds: float) -> None:
        self.base_seconds = base_seconds
        self.attempts = 0
        self.since = 0.0

    def failed(self, error: Exception) -> float:
        self.attempts += 1
        if self.attempts == 1:
            self.since = time.monotonic()
            log.warning("hand-off failing (%s: %s); rewinding and retrying with backoff until it recovers",
                        type(error).__name__, str(error)[:200])
        return min(self.base_seconds * 2 ** (self.attempts - 1), 10.0)

    def ended(self) -> None:
        if self.attempts:
            log.warning("hand-off recovered after %.1fs and %d attempt(s)", time.monotonic() - self.since,
                        self.attempts)
            self.attempts = 0


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

    def broker_ok(self) -> None:
        """Messages arrived: the broker is back, if it was what failed."""
        if self._broker_down():
            self.ok()

    def _broker_down(self) -> bool:
        return self.down_since is not None and self.reason.startswith("Kafka")

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
        elif self._broker_down() and time.monotonic() > self.next_probe:
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
            return value.decode(errors="replace") if isinstance(value, bytes) else value
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
