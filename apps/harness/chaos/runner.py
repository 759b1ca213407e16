"""`manage.py chaos` and the CI chaos tests: one real stack, the scenarios in turn, a report by counting.

The run has its own Redis (so it can restart it), its own topics and key prefix, and the fake
provider; it seeds the audience if needed and removes what it created at the end.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from apps.audience.models import Follow
from apps.core import redis_client
from apps.core.progress_bar import ProgressBar
from apps.delivery import publisher
from apps.delivery.models import DeadLetter
from apps.harness.benchmark import delete_notifications, warm_up
from apps.harness.fake_server import FakeProviderControl
from apps.harness.processes import Stack
from apps.harness.seeding import seed_audience
from apps.streaming.client import delete_topics, ensure_topics
from apps.streaming.topics import all_topics

from .run_state import Run
from .scenarios import SCENARIOS
from .services import RedisServer

PROVIDER_TIMEOUT_SECONDS = 2


@dataclass
class ChaosOptions:
    users: int = 100_000
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    seed: int | None = None
    timeout: float = 600.0  # per wait inside a scenario
    latency_ms: float = 5.0  # each provider answer takes a while, as a real one does


@contextmanager
def _run_settings(redis_url: str, run_id: str):  # noqa: ANN202
    """This process talks to the run's Redis and topics; the previous settings come back afterwards."""
    names = ("REDIS_URL", "THROTTLE_REDIS_URL", "CELERY_BROKER_URL", "REDIS_KEY_PREFIX", "KAFKA_TOPIC_PREFIX",
             "FAKE_PROVIDER_URL", "KAFKA_BOOTSTRAP_SERVERS")
    saved = {name: getattr(settings, name) for name in names}
    for name in ("REDIS_URL", "THROTTLE_REDIS_URL", "CELERY_BROKER_URL"):
        setattr(settings, name, redis_url)
    settings.REDIS_KEY_PREFIX = f"chaos:{run_id}:"
    settings.KAFKA_TOPIC_PREFIX = f"chaos{run_id}."
    redis_client.forget_client()
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)
        redis_client.forget_client()


def run(options: ChaosOptions, log: Callable[[str], None] = print, show_progress: bool = False) -> dict:
    """show_progress: a bar over the scenarios on stderr, with the log lines written through it."""
    with ProgressBar("chaos", len(options.scenarios), "scenarios", enabled=show_progress) as bar:
        return _run(options, bar.write if show_progress else log, bar)


def _run(options: ChaosOptions, log: Callable[[str], None], bar: ProgressBar) -> dict:
    unknown = sorted(set(options.scenarios) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if options.users < 1_000:
        raise ValueError("--users must be at least 1000")
    run_id = uuid.uuid4().hex[:8]
    topic = f"chaos-{options.users}"
    if Follow.objects.filter(topic__slug=topic).count() < options.users:
        log(f"seeding {options.users} fans")
        with ProgressBar("seeding", options.users, "users", enabled=bar.enabled) as seeding:
            seed_audience(options.users, topic, on_chunk=seeding.advance)
    redis_server = RedisServer()
    redis_server.start()
    stack = None
    try:
        with _run_settings(redis_server.url, run_id):
            stack = _start_stack()
            chaos = Run(stack=stack, redis=redis_server, provider=FakeProviderControl(stack.env["FAKE_PROVIDER_URL"]),
                        topic=topic, users=options.users, run_id=run_id,
                        rng=random.Random(options.seed if options.seed is not None else time.time_ns()),
                        timeout=options.timeout, provider_timeout_s=PROVIDER_TIMEOUT_SECONDS,
                        latency_ms=options.latency_ms, log=log)
            warm_up(topic, run_id)
            results = {}
            try:
                for name in options.scenarios:
                    log(f"scenario {name}")
                    started = time.monotonic()
                    restarts_before = dict(stack.restarts)
                    results[name] = SCENARIOS[name](chaos) | {"seconds": round(time.monotonic() - started, 1)}
                    # Processes that died of the scenario and were restarted by the supervisor.
                    results[name]["restarted"] = {name: count - restarts_before.get(name, 0)
                                                  for name, count in stack.restarts.items()
                                                  if count > restarts_before.get(name, 0)}
                    log(f"  {results[name]}")
                    bar.advance()
            finally:
                stack.stop(keep=("broker",))  # nothing consumes the topics while they are deleted
                _clean_up(chaos)
        return {"scenarios": results, "missing": sum(r["missing"] for r in results.values()),
                "duplicates": sum(r["duplicates"] for r in results.values()), "users": options.users,
                "seed": options.seed}
    finally:
        if stack:
            stack.stop()
        redis_server.stop()


def _start_stack() -> Stack:
    stack = Stack()  # its processes take this process's settings: the run's Redis, prefixes and broker
    stack.env |= {
        "PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
        # Tasks a Redis restart strands unacknowledged come back after this; holds must stay shorter.
        "CELERY_VISIBILITY_TIMEOUT": "30", "NOTIFY_DEFERRED_HOLD_SECONDS": "20",
        "NOTIFY_RECONCILE_SECONDS": "5", "NOTIFY_REDISPATCH_STALLED_SECONDS": "45",
    }
    stack.start_broker()
    ensure_topics()
    stack.start_fake_provider()
    stack.start_pipeline(send_workers=1, send_concurrency=4, send_bridges=1, priorities=("normal", "high", "low"))
    stack.supervise()
    return stack


def _clean_up(chaos: Run) -> None:
    from apps.campaigns.models import Campaign
    from apps.content.models import Template

    for campaign in Campaign.objects.filter(name=f"chaos-{chaos.run_id}"):
        task = campaign.periodic_task
        campaign.delete()
        if task:
            clocked = task.clocked
            task.delete()
            if clocked and not PeriodicTask.objects.filter(clocked=clocked).exists():
                ClockedSchedule.objects.filter(pk=clocked.pk).delete()
    DeadLetter.objects.filter(topic__startswith=settings.KAFKA_TOPIC_PREFIX).delete()
    DeadLetter.objects.filter(notification_id__in=chaos.fake_ids).delete()
    delete_notifications(chaos.notification_ids)
    Template.objects.filter(name=f"chaos-{chaos.run_id}").delete()
    delete_topics([spec.name for spec in all_topics()])
    publisher.close_producer()
