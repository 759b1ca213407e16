"""Prometheus metrics. Counters and histograms are written by every process into
PROMETHEUS_MULTIPROC_DIR (set in settings before this import); /metrics adds them up and adds the
gauges that are read at scrape time (queue depth, consumer lag, dead letters, dependencies)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "notify_deliveries_total", "Recipients by final or intermediate outcome.",
    ["channel", "category", "provider", "outcome"],  # outcome: sent, failed, skipped, retried, throttled, dead_lettered
)
PROVIDER_SECONDS = Histogram(
    "notify_provider_request_seconds", "Time of one provider call (a batch, or a request of it).", ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DEAD_LETTERS = Counter(
    "notify_dead_letters_total", "Dead letters written, by source (events, batch, retry, deferred, send, dispatch) and"
    " reason kind (invalid, error, attempts_exhausted, unknown_notification).", ["source", "reason_kind"],
)


def count(channel: str, category: str, provider: str, outcome: str, n: int = 1) -> None:
    if n:
        DELIVERIES.labels(channel, category, provider, outcome).inc(n)


def serve_metrics(port: int) -> None:
    """For processes without a web server (bridges, Celery workers): their metrics on :port/metrics,
    summed over every process writing into this host's PROMETHEUS_MULTIPROC_DIR."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
