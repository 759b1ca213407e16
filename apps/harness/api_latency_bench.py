"""Create-notification latency over HTTP: POST /api/notifications at a fixed rate against the web tier as
the README runs it (gunicorn + uvicorn workers, DEBUG off, DATABASE_CONN_MAX_AGE=0), or against --url.

Open loop: request i is due at start + i / rate whether or not earlier ones have answered, and its latency
is counted from when it was due, so a stall shows in the percentiles instead of slowing the sender
(no coordinated omission). Each request has its own Idempotency-Key, so each records a notification and
publishes its event; nothing dispatches them, and they are deleted at the end with the bench's API key,
Redis keys and topics.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import aiohttp
from django.conf import settings

from apps.core import redis_client
from apps.delivery import publisher
from apps.delivery.models import ApiKey, ApiScope, Notification
from apps.streaming.client import delete_topics, ensure_topics
from apps.streaming.local_broker import free_port
from apps.streaming.topics import all_topics

from .processes import Stack

WEB = ["gunicorn", "notifications_project.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "--preload"]


@dataclass
class LatencyOptions:
    rate: float = 200.0
    requests: int = 2000
    warmup: int = 100
    workers: int = 4  # the README's web command: -w 4
    pool_size: int = 8  # and its DATABASE_POOL_SIZE (0: a connection per request)
    url: str | None = None


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


async def _fire(url: str, token: str, run_id: str, count: int, rate: float) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    body = json.dumps({"category": "goal-alerts", "audience": {"recipients": [1]}, "channels": ["push"],
                       "title": "GOAL!"})
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(index: int) -> None:
            due = start + index / rate
            await asyncio.sleep(max(due - loop.time(), 0))
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "Idempotency-Key": f"bench-api-{run_id}-{index}-{uuid.uuid4().hex[:6]}"}
            try:
                async with session.post(f"{url}/api/notifications", data=body, headers=headers) as answer:
                    await answer.read()
                    status = str(answer.status)
            except (aiohttp.ClientError, OSError) as exc:  # counted, not fatal: the report says how many
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append((loop.time() - due) * 1000)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, statuses


def _start_web(stack: Stack, workers: int, pool_size: int) -> str:
    # The README's web environment: under ASGI each request's sync code runs in a thread of its own, so the
    # connections come from a pool per process (DATABASE_POOL_SIZE), not from Django's per-thread ones.
    stack.env.update({"DJANGO_DEBUG": "0", "NOTIFY_DEVELOPMENT": "1", "DATABASE_CONN_MAX_AGE": "0",
                      "DATABASE_POOL_SIZE": str(pool_size)})
    port = free_port()
    stack.spawn("web", [sys.executable, "-m", *WEB, "-b", f"127.0.0.1:{port}", "-w", str(workers)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return url
        except OSError:
            if stack.processes["web"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start (log: {stack.log_dir / 'web.log'})") from None
            time.sleep(0.2)


def run(options: LatencyOptions) -> dict:
    from apps.preferences.defaults import ensure_default_categories

    run_id = uuid.uuid4().hex[:8]
    saved = settings.REDIS_KEY_PREFIX, settings.KAFKA_TOPIC_PREFIX
    settings.REDIS_KEY_PREFIX = f"bench:{run_id}:"
    settings.KAFKA_TOPIC_PREFIX = f"bench{run_id}."
    ensure_default_categories()
    token = f"bench-{uuid.uuid4().hex}"
    key = ApiKey.objects.create(name=f"bench-api-{run_id}", token_sha256=ApiKey.hash(token),
                                scopes=[ApiScope.SEND], rate_per_minute=10_000_000)
    stack = Stack()
    try:
        url = options.url
        if url is None:
            stack.start_broker()
            ensure_topics()
            url = _start_web(stack, options.workers, options.pool_size)
        asyncio.run(_fire(url, token, run_id, options.warmup, options.rate))
        started = time.monotonic()
        latencies, statuses = asyncio.run(_fire(url, token, run_id, options.requests, options.rate))
        seconds = time.monotonic() - started
    finally:
        stack.stop(keep=("broker",))
        if options.url is None:
            delete_topics([spec.name for spec in all_topics()])
        publisher.close_producer()
        stack.stop()
        Notification.objects.filter(api_key=key).delete()
        key.delete()
        client = redis_client.client()
        for redis_key in client.scan_iter(match=f"bench:{run_id}:*", count=10_000):
            client.delete(redis_key)
        settings.REDIS_KEY_PREFIX, settings.KAFKA_TOPIC_PREFIX = saved
    ordered = sorted(latencies)
    return {"benchmark": "create_notification", "url": "started" if options.url is None else options.url,
            "web_workers": options.workers if options.url is None else None,
            "database_pool_size": options.pool_size if options.url is None else None,
            "rate_per_s": options.rate,
            "requests": options.requests, "achieved_per_s": round(options.requests / seconds, 1),
            "statuses": dict(sorted(statuses.items())),
            "p50_ms": round(percentile(ordered, 0.50), 2), "p90_ms": round(percentile(ordered, 0.90), 2),
            "p99_ms": round(percentile(ordered, 0.99), 2), "max_ms": round(ordered[-1], 2),
            "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
