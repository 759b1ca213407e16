"""The goal-alert fan-out benchmark behind `manage.py bench_fanout`."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection

from apps.audience.models import Follow, Topic
from apps.core import redis_client
from apps.core.progress_bar import ProgressBar
from apps.delivery import progress, publisher, records
from apps.delivery.models import DeadLetter, Delivery, DeliveryStatus, Notification
from apps.delivery.service import notify
from apps.streaming.client import delete_topics, ensure_topics
from apps.streaming.topics import all_topics

from .device_profiles import DEFAULT_PROFILE
from .fake_server import FakeProviderControl, Faults
from .processes import Stack, cpu_by_command, cpu_seconds, peak_rss_mb, process_tree
from .seeding import seed_audience, topic_profile


@dataclass
class BenchOptions:
    users: int
    topic: str = ""  # default: bench-<users>[-<devices>], so the audience is exactly the N fans
    devices: str = DEFAULT_PROFILE
    provider_latency_ms: float = 0.0
    send_workers: int = 1
    concurrency: int = 8
    send_bridges: int = 1
    timeout: float = 900.0
    keep_records: bool = False
    faults: Faults | None = None
    provider_timeout_s: int = 2  # with injected timeouts: the send workers' client timeout
    provider: str = "fake"  # or fcm, apns, email: that real adapter against its local protocol server

    @property
    def channel(self) -> str:
        return "email" if self.provider == "email" else "push"


def wait_completed(notification_id: int, timeout: float, show_progress: bool) -> dict:
    deadline = time.monotonic() + timeout
    with ProgressBar("recorded", unit="recipients", enabled=show_progress) as bar:
        while time.monotonic() < deadline:
            state = progress.read(notification_id)
            track(bar, state)
            if "t_completed" in state:
                return state
            time.sleep(0.2)
    raise TimeoutError(f"notification {notification_id} not completed after {timeout:.0f}s: {state}")


def track(bar: ProgressBar, state: dict) -> None:
    """Recipients with a final state, of those targeted (known once dispatch has counted them)."""
    targeted = state.get("targeted")
    bar.set(int(sum(state.get(k, 0) for k in progress.TERMINAL)), int(targeted) if targeted else None)


def run(options: BenchOptions, show_progress: bool = True) -> dict:
    run_id = uuid.uuid4().hex[:8]
    options.topic = options.topic or bench_topic(options.users, options.devices)
    settings.REDIS_KEY_PREFIX = f"bench:{run_id}:"
    settings.KAFKA_TOPIC_PREFIX = f"bench{run_id}."
    seed_started = time.monotonic()
    ensure_audience(options.users, options.topic, options.devices)
    seed_seconds = time.monotonic() - seed_started
    stack = Stack()
    try:
        stack.start_broker()
        ensure_topics()
        provider = FakeProviderControl(start_provider(stack, options))
        faults = options.faults or Faults()
        if faults.fail_timeout:
            stack.env["PROVIDER_TIMEOUT_SECONDS"] = str(options.provider_timeout_s)
            faults.timeout_hold_s = options.provider_timeout_s + 1.0
        stack.start_pipeline(options.send_workers, options.concurrency, options.send_bridges)
        warm_up(options.topic, run_id, options.channel)
        provider.reset(faults)

        services_before = cpu_by_command()
        cpu_before = _cpu(stack)
        started = time.time()
        notification = notify(category="goal-alerts", audience={"topic": options.topic}, channels=[options.channel],
                              title="GOAL! {{ team }} 1-0", body="{{ scorer }} scores in the {{ minute }}'",
                              context={"team": "Home", "scorer": "Number 9", "minute": 90},
                              idempotency_key=f"bench-{run_id}")
        state = wait_completed(notification.pk, options.timeout, show_progress)
        peaks = peak_rss_by_process(stack)
        cpu = {name: round(seconds - cpu_before.get(name, 0.0), 1) for name, seconds in _cpu(stack).items()}
        cpu |= {name: round(seconds - services_before[name], 1) for name, seconds in cpu_by_command().items()}
        report = _report(notification.pk, started, state, provider.stats(), peaks, seed_seconds, options)
        report["cpu_seconds"] = cpu
        # Every process of the run, PostgreSQL and Redis included: the budget is 8 µs (2 cores, 10 s, 2.5M).
        report["cpu_us_per_recipient"] = round(sum(cpu.values()) * 1e6 / max(report["recipients"], 1), 1)
        return report
    finally:
        stack.stop(keep=("broker",))  # first, or a bridge writes the run's epoch key again after clean_up
        clean_up(run_id, options.keep_records)
        stack.stop()


def start_provider(stack: Stack, options: BenchOptions) -> str:
    """The provider's server, and the workers' routing to it; returns the URL of its stats. With a real
    adapter, every push device of the audience goes through it with its own token (BENCH_ROUTE_ALL_PUSH_TO)."""
    if options.provider == "fake":
        stack.env["FAKE_PROVIDER_ROUTE_ALL_PUSH"] = "1"  # FCM, APNs and Web Push tokens too
        return stack.start_fake_provider(options.provider_latency_ms)
    if options.channel == "push":
        stack.env["BENCH_ROUTE_ALL_PUSH_TO"] = options.provider
    return stack.start_protocol_server(options.provider, options.provider_latency_ms)


def bench_topic(users: int, devices: str) -> str:
    """bench-N for the single profile (the name it always had), bench-N-<profile> for the others."""
    return f"bench-{users}" if devices == "single" else f"bench-{users}-{devices}"


def ensure_audience(users: int, topic: str, devices: str) -> None:
    """Seed the topic's N fans with this device profile unless they are there; never reuse a topic
    seeded with another profile."""
    seeded = topic_profile(topic)
    if seeded not in (None, devices):
        raise RuntimeError(f"topic {topic!r} was seeded with --devices {seeded}, not {devices}")
    if Follow.objects.filter(topic__slug=topic).count() < users:
        try:
            with ProgressBar("seeding", users, "users") as bar:
                seed_audience(users, topic, devices, on_chunk=bar.advance)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None


def expected_devices(notification_id: int, channel: str = "push") -> int:
    """The active devices of the recipients a notification was delivered to: each must reach the
    provider once (a device deactivated on the way, as invalid, is not counted). For email, the
    recipients it was delivered to: one address each."""
    low, high = Delivery.key_range(notification_id)
    with connection.cursor() as cursor:
        if channel != "push":
            cursor.execute("SELECT count(*) FROM delivery_delivery WHERE id BETWEEN %s AND %s AND status = %s"
                           " AND channel = %s", [low, high, DeliveryStatus.SENT, channel])
            return cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM delivery_delivery x JOIN audience_device d"
                       " ON d.recipient_id = x.recipient_id AND d.is_active"
                       " WHERE x.id BETWEEN %s AND %s AND x.status = %s AND x.channel = 'push'",
                       [low, high, DeliveryStatus.SENT])
        return cursor.fetchone()[0]


def warm_up(topic: str, run_id: str, channel: str = "push") -> None:
    """One tiny notification through every stage, so consumer-group joins are not timed."""
    first = Topic.objects.get(slug=topic).follows.order_by("recipient_id").values_list("recipient_id", flat=True)[0]
    notification = notify(category="goal-alerts", audience={"recipients": [first]}, channels=[channel],
                          title="warm-up", idempotency_key=f"bench-warmup-{run_id}")
    wait_completed(notification.pk, 120, show_progress=False)
    Delivery.of_notification(notification.pk).delete()
    notification.delete()


def _cpu(stack: Stack) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in process_tree(process.pid))
            for name, process in stack.processes.items()}


def peak_rss_by_process(stack: Stack) -> dict[str, float]:
    peaks = {"bench": round(peak_rss_mb(os.getpid()), 1)}
    for name, process in stack.processes.items():
        peaks[name] = round(max(peak_rss_mb(pid) for pid in process_tree(process.pid)), 1)
    return peaks


def _report(notification_id: int, started: float, state: dict, provider: dict, peaks: dict, seed_seconds: float,
            options: BenchOptions) -> dict:
    counts = records.count_by_status(notification_id)
    notification = Notification.objects.get(pk=notification_id)
    targeted = notification.targeted or 0
    terminal = sum(counts.values())
    devices = expected_devices(notification_id, options.channel)
    # Missing: recipients with no final state, and devices of delivered recipients that the provider
    # never received a push for (counted per device: a user with two devices must get two).
    missing = max(targeted - terminal, 0) + max(devices - provider["unique"], 0)
    end = state.get("t_all_recorded", state["t_completed"])
    seconds = end - started

    def span(a: str, b: str) -> float:
        return round(state[b] - state[a], 3) if a in state and b in state else None

    state["t_trigger"] = started
    return {
        "recipients": targeted, "devices": devices, "delivered": counts["sent"], "skipped": counts["skipped"],
        "failed": counts["failed"], "dead_lettered": counts["dead_lettered"],
        "missing": missing, "duplicates": provider["duplicates"], "provider_bytes": provider["bytes"],
        "seconds": round(seconds, 3), "recipients_per_s": round(targeted / seconds) if seconds > 0 else None,
        "stages": {
            "trigger_to_dispatch": span("t_trigger", "t_dispatch_start"),
            "dispatch_stream_and_publish": span("t_dispatch_start", "t_dispatch_end"),
            "dispatch_to_first_send": span("t_dispatch_start", "t_first_send"),
            "first_send_to_all_recorded": span("t_first_send", "t_all_recorded"),
            "finalize": span("t_all_recorded", "t_completed"),
        },
        "provider": {"requests": provider["requests"], "tokens": provider["received"],
                     "429": provider.get("throttled", provider.get("injected", {}).get("429", 0)),
                     "injected": provider.get("injected", {})},
        "peak_rss_mb": peaks,
        "config": {"provider": options.provider, "devices": options.devices,
                   "provider_latency_ms": options.provider_latency_ms,
                   "send_workers": options.send_workers,
                   "concurrency": options.concurrency, "send_bridges": options.send_bridges,
                   "partitions": settings.KAFKA_PARTITIONS, "seed_seconds": round(seed_seconds, 1),
                   "faults": asdict(options.faults) if options.faults else None},
    }


def delete_notifications(notification_ids: list[int]) -> None:
    """A run's notifications with their delivery rows and dead letters."""
    for notification_id in notification_ids:
        low, high = Delivery.key_range(notification_id)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM delivery_delivery WHERE id BETWEEN %s AND %s", [low, high])
        DeadLetter.objects.filter(notification_id=notification_id).delete()
        Notification.objects.filter(pk=notification_id).delete()
    # Leave no dead tuples behind for the next run (or the next notification) to trip on.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) delivery_delivery")


def clean_up(run_id: str, keep_records: bool) -> None:
    if not keep_records:
        delete_notifications(list(Notification.objects.filter(idempotency_key__startswith=f"bench-{run_id}")
                                  .values_list("pk", flat=True)))
    client = redis_client.client()
    for key in client.scan_iter(match=f"bench:{run_id}:*", count=10_000):
        client.delete(key)
    delete_topics([spec.name for spec in all_topics()])
    publisher.close_producer()
