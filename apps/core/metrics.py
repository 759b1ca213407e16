"""Prometheus metrics. Counters and histograms are written by every process into
PROMETHEUS_MULTIPROC_DIR (set in settings before this import); /metrics adds them up and adds the
gauges that are read at scrape time (queue depth, consumer lag, dead letters, dependencies)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "notify_deliveries_total", "Recipients by final or intermediate outcome.",
    ["channel", "category", "provider", "outcome"],  # outcome: sent, failed, skipped, retried, throttled, dead_lettered
)
PROVIDER_SECONDS = Histogram(
    "notify_provider_request_seconds", "Time of one provider call (a batch, or a request of it).", ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# The OTP latency an operator watches: from the notification's row (the API, notify() or a Kafka event
# accepted it) to the provider's answer, once per batch on its first pass (not per recipient).
ACCEPT_TO_PROVIDER_SECONDS = Histogram(
    "notify_accept_to_provider_seconds", "From a notification's acceptance to the provider accepting its batch"
    " (first attempt), by priority and channel.", ["priority", "channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
DEAD_LETTERS = Counter(
    "notify_dead_letters_total", "Dead letters written, by source (events, batch, retry, deferred, send, dispatch) and"
    " reason kind (invalid, error, attempts_exhausted, unknown_notification).", ["source", "reason_kind"],
)


def count(channel: str, category: str, provider: str, outcome: str, n: int = 1) -> None:
    if n:
        DELIVERIES.labels(channel, category, provider, outcome).inc(n)


def accepted_to_provider(priority: str, channel: str, accepted_at: float) -> None:
    """`accepted_at`: the notification's creation, epoch seconds."""
    ACCEPT_TO_PROVIDER_SECONDS.labels(priority, channel).observe(max(time.time() - accepted_at, 0.0))
