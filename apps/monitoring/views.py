"""/healthz (liveness), /readyz (dependencies) and /metrics (Prometheus). None of them raises on a
down dependency: they report it."""

from __future__ import annotations

import hmac
import logging
import time

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from .health import run_checks

log = logging.getLogger(__name__)
LAG_CACHE_SECONDS = 10.0
_lag_cache: tuple[float, list] = (0.0, [])


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    down = {name: reason for name, reason in checks.items() if reason}
    body = {"status": "ready" if not down else "not ready",
            "checks": {name: reason or "ok" for name, reason in checks.items()}}
    if down:
        body["down"] = sorted(down)
    return JsonResponse(body, status=503 if down else 200)


def may_scrape(request: HttpRequest) -> bool:
    """With METRICS_TOKEN as a bearer token, or on the internal METRICS_PORT (the socket's port, which a
    client cannot claim); in a local run without a token, anyone."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    if settings.METRICS_PORT and request.META.get("SERVER_PORT") == str(settings.METRICS_PORT):
        return True
    return settings.DEVELOPMENT and not token


def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return JsonResponse({"error": "metrics are served on the internal METRICS_PORT, or with "
                                      "'Authorization: Bearer <METRICS_TOKEN>'"}, status=403)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ScrapeTimeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class ScrapeTimeCollector:
    """Gauges read when scraped: dependencies, Celery queue depth, consumer lag, open dead letters."""

    def collect(self):  # noqa: ANN201
        checks = run_checks()
        up = GaugeMetricFamily("notify_dependency_up", "1 if the dependency answers.", labels=["dependency"])
        for name, reason in checks.items():
            up.add_metric([name], 0 if reason else 1)
        yield up
        if not checks["redis"]:
            yield self._queue_depth()
        if not checks["kafka"]:
            yield self._lag()
        if not checks["postgres"]:
            from apps.delivery.models import DeadLetter

            open_letters = GaugeMetricFamily("notify_dead_letters_open", "Dead letters not replayed yet.")
            open_letters.add_metric([], DeadLetter.objects.filter(replayed_at__isnull=True).count())
            yield open_letters

    def _queue_depth(self) -> GaugeMetricFamily:
        from apps.core.queues import all_queues

        gauge = GaugeMetricFamily("notify_celery_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"])
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            pipe = client.pipeline(transaction=False)
            for queue in all_queues():  # kombu keeps one list per priority step
                for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169"):
                    pipe.llen(f"{prefix}{queue}{suffix}")
            lengths = pipe.execute()
            for index, queue in enumerate(all_queues()):
                gauge.add_metric([queue], sum(lengths[index * 4:index * 4 + 4]))
        except redis.RedisError:
            pass
        finally:
            client.close()
        return gauge

    def _lag(self) -> GaugeMetricFamily:
        global _lag_cache
        from apps.streaming.lag import GroupNotFound, group_lag
        from apps.streaming.topics import bridge_groups

        gauge = GaugeMetricFamily("notify_consumer_lag", "Messages not yet handed on, per group/topic/partition.",
                                  labels=["group", "topic", "partition"])
        made_at, rows = _lag_cache
        if time.monotonic() - made_at > LAG_CACHE_SECONDS:
            try:
                rows = []
                for group, topics in bridge_groups().items():
                    try:
                        rows += group_lag(group, topics, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
                    except GroupNotFound:
                        continue
                _lag_cache = (time.monotonic(), rows)
            except Exception as exc:  # a scrape reports what it can
                log.warning("consumer lag unavailable: %s", type(exc).__name__)
        for row in rows:
            gauge.add_metric([row.group, row.topic, str(row.partition)], row.lag)
        return gauge
