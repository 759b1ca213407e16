"""`manage.py bench_priority`: OTP latency while a low-priority blast is in flight.

A 2.5M low-priority blast runs through the real pipeline; meanwhile OTPs (security, high priority,
one recipient each) are triggered at a steady rate. Each OTP's latency runs from the trigger call
to its delivery row, which is written once the provider has answered. A baseline without the blast
is measured first.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from apps.audience.models import Device, Recipient
from apps.core import redis_client
from apps.core.channels import Priority
from apps.core.progress_bar import ProgressBar
from apps.delivery import progress, records
from apps.delivery.models import Delivery, Notification
from apps.delivery.service import notify
from apps.preferences.defaults import ensure_default_categories
from apps.preferences.models import Category, CategoryKind
from apps.streaming.client import ensure_topics

from . import benchmark
from .device_profiles import DEFAULT_PROFILE
from .fake_server import FakeProviderControl
from .processes import Stack

BLAST_CATEGORY = "bench-blast"


@dataclass
class PriorityBenchOptions:
    users: int
    devices: str = DEFAULT_PROFILE
    otp_rate: float = 20.0
    baseline_otps: int = 100
    concurrency: int = 8
    nice_bulk: int = 10
    timeout: float = 900.0


def run(options: PriorityBenchOptions) -> dict:
    run_id = uuid.uuid4().hex[:8]
    topic = benchmark.bench_topic(options.users, options.devices)
    settings.REDIS_KEY_PREFIX = f"bench:{run_id}:"
    settings.KAFKA_TOPIC_PREFIX = f"bench{run_id}."
    ensure_default_categories()
    Category.objects.get_or_create(slug=BLAST_CATEGORY, defaults={
        "name": "Benchmark blast (low priority)", "kind": CategoryKind.PROMOTIONAL, "priority": Priority.LOW,
        "daily_cap": None, "max_attempts": 3, "ttl_seconds": 3600})
    benchmark.ensure_audience(options.users, topic, options.devices)
    # One OTP user each, so the provider's duplicate count means what it says.
    otp_users = _otp_recipients(options.baseline_otps + int(options.otp_rate * options.timeout))
    stack = Stack()
    stack.env["FAKE_PROVIDER_ROUTE_ALL_PUSH"] = "1"
    try:
        stack.start_broker()
        ensure_topics()
        provider = FakeProviderControl(stack.start_fake_provider())
        stack.start_pipeline(send_concurrency=options.concurrency, priorities=("low", "high"),
                             nice_bulk=options.nice_bulk)
        benchmark.wait_completed(_otp(otp_users[0], f"bench-{run_id}-warm").pk, 120, show_progress=False)
        provider.reset()

        baseline = _send_otps(otp_users[:options.baseline_otps], run_id, "base",
                              lambda sent: sent >= options.baseline_otps, options)
        started = time.time()
        blast = notify(category=BLAST_CATEGORY, audience={"topic": topic}, channels=["push"], title="Big sale",
                       body="Everything half price today", idempotency_key=f"bench-{run_id}-blast")
        with ProgressBar("blast recorded", unit="recipients") as bar:
            during = _send_otps(otp_users[options.baseline_otps:], run_id, "blast",
                                lambda sent: _blast_done(blast.pk, bar), options,
                                deadline=time.monotonic() + options.timeout)
        state = progress.read(blast.pk)
        seconds = state.get("t_all_recorded", state["t_completed"]) - started
        counts = records.count_by_status(blast.pk)
        targeted = Notification.objects.get(pk=blast.pk).targeted or 0
        stats = provider.stats()
        otp_sent = baseline["count"] + during["count"]
        devices = benchmark.expected_devices(blast.pk)
        report = {
            "otp_baseline": baseline, "otp_during_blast": during,
            "blast": {"recipients": targeted, "devices": devices, "delivered": counts["sent"],
                      "skipped": counts["skipped"],
                      "missing": max(targeted - sum(counts.values()), 0) + max(devices + otp_sent - stats["unique"], 0),
                      "duplicates": stats["duplicates"], "provider_bytes": stats["bytes"], "seconds": round(seconds, 3),
                      "recipients_per_s": round(targeted / seconds) if seconds > 0 else None},
            "peak_rss_mb": benchmark.peak_rss_by_process(stack),
            "config": {"devices": options.devices, "otp_rate": options.otp_rate, "concurrency": options.concurrency,
                       "nice_bulk": options.nice_bulk},
        }
        return report
    finally:
        benchmark.clean_up(run_id, keep_records=False)
        stack.stop()


def _blast_done(notification_id: int, bar: ProgressBar) -> bool:
    state = progress.read(notification_id)
    benchmark.track(bar, state)
    return "t_completed" in state


def _otp_recipients(count: int) -> list[int]:
    """Users outside the blast's audience, each with one device and one OTP, so duplicates can be counted."""
    existing = Recipient.objects.filter(external_id__startswith="bench-otp-")
    if existing.count() < count:
        made = Recipient.objects.bulk_create([Recipient(external_id=f"bench-otp-{uuid.uuid4().hex}")
                                              for _ in range(count - existing.count())])
        Device.objects.bulk_create([Device(recipient=r, platform="fake", token=f"fake:{r.pk:010d}:otp")
                                    for r in made])
    return list(existing.order_by("pk").values_list("pk", flat=True)[:count])


def _otp(recipient_id: int, key: str) -> Notification:
    return notify(category="security", audience={"recipients": [recipient_id]}, channels=["push"],
                  title="Your code", body="123456", idempotency_key=key)


def _send_otps(users: list[int], run_id: str, phase: str, done, options: PriorityBenchOptions,  # noqa: ANN001
               deadline: float | None = None) -> dict:
    """Trigger OTPs at options.otp_rate until done(sent); returns their latencies in ms, overall and per hop."""
    interval = 1.0 / options.otp_rate
    triggered: list[tuple[Notification, float, int]] = []
    next_at = time.monotonic()
    while not done(len(triggered)):
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"{phase}: not finished after {options.timeout:.0f}s")
        next_at += interval
        recipient_id = users[len(triggered) % len(users)]
        started = time.time()
        notification = _otp(recipient_id, f"bench-{run_id}-{phase}-{len(triggered)}")
        redis_client.client().hset(progress.progress_key(notification.pk), "t_triggered", time.time())
        triggered.append((notification, started, recipient_id))
        time.sleep(max(next_at - time.monotonic(), 0.0))
    return _latencies(triggered)


def _latencies(triggered: list[tuple[Notification, float, int]]) -> dict:
    """Wait for every OTP's delivery row; latency = row written (provider answered) - trigger.

    Per hop, from the pipeline's stage marks: the notify() call (record + publish), the event through
    notify.events to the bridge's hand-off, the Celery hop to the dispatcher, dispatch and the hop to
    the sender's first call, and from there to the row.
    """
    keys = {Delivery.key(n.pk, "push", r): (n.pk, started) for n, started, r in triggered}
    deadline = time.monotonic() + 60
    while True:
        rows = dict(Delivery.objects.filter(id__in=list(keys)).values_list("id", "updated_at"))
        if len(rows) == len(keys) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(rows) < len(keys):
        raise TimeoutError(f"{len(keys) - len(rows)} OTP(s) not delivered within 60 s")
    total, hops = [], {"notify_call": [], "event_to_bridge": [], "bridge_to_dispatch": [], "dispatch_to_send": [],
                       "send_to_recorded": []}
    for key, (notification_id, started) in keys.items():
        recorded = rows[key].timestamp()
        marks = progress.read(notification_id)
        total.append((recorded - started) * 1000)
        hops["notify_call"].append((marks["t_triggered"] - started) * 1000)
        hops["event_to_bridge"].append((marks["t_event_handed"] - marks["t_triggered"]) * 1000)
        hops["bridge_to_dispatch"].append((marks["t_dispatch_start"] - marks["t_event_handed"]) * 1000)
        hops["dispatch_to_send"].append((marks["t_first_send"] - marks["t_dispatch_start"]) * 1000)
        hops["send_to_recorded"].append((recorded - marks["t_first_send"]) * 1000)
    return {**_latency(total), "hops_p50_p99_ms": {name: [_percentile(sorted(v), 0.5), _percentile(sorted(v), 0.99)]
                                                   for name, v in hops.items()}}


def _percentile(values: list[float], share: float) -> float:
    return round(values[min(int(len(values) * share), len(values) - 1)], 1)


def _latency(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    values = sorted(values)
    return {"count": len(values), "p50_ms": _percentile(values, 0.50), "p95_ms": _percentile(values, 0.95),
            "p99_ms": _percentile(values, 0.99), "max_ms": round(values[-1], 1),
            "mean_ms": round(statistics.fmean(values), 1)}


