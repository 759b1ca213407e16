"""The provider calls of one batch: its targets grouped by the service of their platform, cut into calls of
NOTIFY_PROVIDER_CALL_SIZE (500) or the transport's max_batch if smaller, several in flight at once from one
thread pool per worker process.

At 20 ms of provider latency a 5,000-recipient batch is ten calls: one after another they would hold
the worker for 200 ms; eight at a time, for about 40 ms. The rate limiter is asked once per batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.conf import settings

from apps.core import metrics
from apps.providers.base import Content, NotConfigured, Result, Target, Transport, TransportError, permanent
from apps.providers.registry import transport_for

from . import ratelimit


class RateLimited(Exception):
    """The provider's shared send quota is spent for now; try again after `wait` seconds (no attempt used)."""

    def __init__(self, wait: float, provider: str) -> None:
        super().__init__(f"{provider} rate limited for {wait:.1f}s")
        self.wait, self.provider = wait, provider


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """This process's pool (a forked Celery child makes its own: threads do not survive fork)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=settings.PROVIDER_CALLS_IN_FLIGHT, thread_name_prefix="provider")
            _pool_pid = os.getpid()
        return _pool


def call(channel: str, targets: list[Target], shared_content: Content | None,
         on_answer: Callable[[list[int], list[Result]], None] | None = None) -> tuple[list[Result], str]:
    """One result per target, and the provider's name ("mixed" when several served the batch).
    `on_answer(indexes, results)` is called in this thread as each provider call answers."""
    results: list[Result | None] = [None] * len(targets)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, target in enumerate(targets):
        groups[target.platform].append(index)
    calls: list[tuple[Transport, list[int]]] = []
    for platform, indexes in groups.items():
        try:
            transport = transport_for(channel, platform)
        except NotConfigured as exc:
            for index in indexes:
                results[index] = permanent(str(exc))
            continue
        owed = ratelimit.wait_for(transport.name, len(indexes), transport.rate_per_s,
                                  settings.RATE_LIMIT_MAX_WAIT_SECONDS)
        if owed:
            raise RateLimited(owed, transport.name)
        size = min(transport.max_batch, settings.PROVIDER_CALL_SIZE)
        calls += [(transport, indexes[start:start + size]) for start in range(0, len(indexes), size)]
    def answered(part: list[int], answer: list[Result]) -> None:
        for index, result in zip(part, answer, strict=True):
            results[index] = result
        if on_answer is not None:
            on_answer(part, answer)

    parallel = [c for c in calls if c[0].calls_in_flight > 1] if settings.PROVIDER_CALLS_IN_FLIGHT > 1 else []
    if len(parallel) < 2:
        parallel = []
    futures = {_threads().submit(_send, transport, [targets[i] for i in part], shared_content): part
               for transport, part in parallel}
    for future in as_completed(futures):
        answered(futures[future], future.result())
    for transport, part in calls:
        if (transport, part) not in parallel:
            answered(part, _send(transport, [targets[i] for i in part], shared_content))
    names = {transport.name for transport, _ in calls}
    return results, (names.pop() if len(names) == 1 else "mixed" if names else "none")  # type: ignore[return-value]


def _send(transport: Transport, targets: list[Target], shared_content: Content | None) -> list[Result]:
    """One provider call; targets sharing one content go as a batch, personalised ones each with theirs."""
    started = time.perf_counter()
    try:
        results = transport.send(shared_content or targets[0].content, targets)
    except TransportError as exc:
        results = exc.as_results(len(targets))
    metrics.PROVIDER_SECONDS.labels(transport.name).observe(time.perf_counter() - started)
    if any(r.error.startswith("HTTP 429") for r in results):
        ratelimit.cut(transport.name, transport.rate_per_s)
    return results
