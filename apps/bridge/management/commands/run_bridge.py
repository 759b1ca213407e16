import logging
import os
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from apps.bridge.handlers import (
    handle_batches,
    handle_deferred,
    handle_events,
    handle_retries,
    rejecter,
    retry_due_at,
)
from apps.core import clock
from apps.core.channels import Channel, Priority
from apps.core.garbage_collector import tune_for_pipeline
from apps.core.outages import BrokerUnavailable, forget_broken_connections, is_outage
from apps.delivery import epoch
from apps.monitoring import readiness
from apps.streaming.client import ensure_topics
from apps.streaming.consumer import ConsumerOptions, DependencyGone, run_consumer
from apps.streaming.local_broker import BrokerNotConfigured, bootstrap_servers
from apps.streaming.topics import DEFERRED, EVENTS, RETRY, channel_topic, topic_name

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Run the Kafka-to-Celery bridge. --role events consumes notify.events; --role send consumes the "
            "recipient-batch topics of one priority; --role retry hands notify.retry batches back when due; "
            "--role deferred hands notify.deferred batches back when their window (cap, quiet hours) opens. "
            "Run several side by side: they split the partitions.")

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=["events", "send", "retry", "deferred"], required=True)
        parser.add_argument("--priority", choices=Priority.values, default="normal")
        parser.add_argument("--channels", default=",".join(Channel.values), help="comma-separated, for --role send")
        parser.add_argument("--batch", type=int, default=50, help="messages handed off per commit")
        parser.add_argument("--grace-seconds", type=float, default=None,
                            help="exit non-zero after a dependency is gone this long (NOTIFY_DEPENDENCY_GRACE_SECONDS)")

    def handle(self, *args, role, priority, channels, batch, grace_seconds, **options):
        from django.conf import settings

        if os.environ.get("METRICS_PORT"):  # first, so the health check can say what start-up waits for
            from apps.monitoring.process_server import serve_metrics

            serve_metrics(int(os.environ["METRICS_PORT"]))
        try:
            bootstrap_servers()
        except BrokerNotConfigured as exc:
            raise CommandError(str(exc)) from None

        tune_for_pipeline()
        grace = grace_seconds if grace_seconds is not None else settings.DEPENDENCY_GRACE_SECONDS
        due_at, hold, now = None, settings.RETRY_HOLD_SECONDS, time.time
        if role == "events":
            group, topics, handler, what = "bridge.events", [topic_name(EVENTS)], handle_events, "event"
        elif role == "retry":
            group, topics, handler, due_at = "bridge.retry", [topic_name(RETRY)], handle_retries, retry_due_at
            what = "retry batch"
        elif role == "deferred":
            group, topics, handler, due_at = "bridge.deferred", [topic_name(DEFERRED)], handle_deferred, retry_due_at
            hold, now, what = settings.DEFERRED_HOLD_SECONDS, clock.now, "deferred batch"
        else:
            wanted = [c.strip() for c in channels.split(",") if c.strip()]
            unknown = sorted(set(wanted) - set(Channel.values))
            if unknown:
                raise CommandError(f"unknown channel(s): {', '.join(unknown)}")
            group, topics, handler = f"bridge.send.{priority}", [channel_topic(c, priority) for c in wanted], \
                handle_batches
            what = "batch"
        # Every notification's event crosses the events bridge, so it polls briskly. A one-batch audience
        # (an OTP) goes from the dispatcher straight to Celery, so the send bridges only carry bulk.
        fetch_wait = settings.KAFKA_URGENT_FETCH_WAIT_MS if role == "events" else settings.KAFKA_BULK_FETCH_WAIT_MS
        _wait_until_up(f"bridge --role {role}" + (f" --priority {priority}" if role == "send" else ""))
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        options_ = ConsumerOptions(group_id=f"{settings.KAFKA_TOPIC_PREFIX}{group}", topics=topics, batch_size=batch,
                                   hold_seconds=hold, grace_seconds=grace, now=now, fetch_wait_ms=fetch_wait)
        self.stdout.write(f"bridge {group} consuming {len(topics)} topic(s)")
        hand_on, reject = (_dropping_broken_connections(step) for step in (handler, rejecter(what)))
        try:
            run_consumer(options_, hand_on, reject, is_outage,
                         should_stop=lambda: epoch.check_now_and_then() or bool(stopping), due_at=due_at)
        except KeyboardInterrupt:
            pass
        except DependencyGone as exc:
            raise CommandError(f"bridge {group} stopping: {exc}") from None


def _wait_until_up(process: str) -> None:
    """A dependency down at start-up is waited for (the health check names it), not a crash-loop."""
    while True:
        readiness.wait_for(["kafka", "redis", "postgres"], process)
        try:
            ensure_topics()
            return
        except BrokerUnavailable:  # gone again in between: wait once more
            continue


def _dropping_broken_connections(step):  # noqa: ANN001, ANN202
    """A hand-off or dead letter that met an outage is retried by the consumer; a database connection it broke
    must not be reused (a dead letter is the bridge's only database write: with its connection left broken, the
    first bad message after a PostgreSQL restart would be retried for ever)."""

    def run(*args):  # noqa: ANN002, ANN202
        try:
            return step(*args)
        except Exception as exc:
            if is_outage(exc):
                forget_broken_connections()
            raise

    return run
