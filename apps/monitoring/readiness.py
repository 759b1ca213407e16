"""Start-up waiting and the readiness a process without a web server reports on its metrics port.

A process whose dependency (PostgreSQL, Redis, Kafka) is down when it starts waits for it with backoff,
instead of exiting and being restarted in a loop. Meanwhile `GET :METRICS_PORT/readyz` answers 503
naming what it waits for; once running, it answers with the same live checks as web's /readyz."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import connections

from .health import CHECKS

log = logging.getLogger(__name__)

BACKOFF_START_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 4.0  # a dependency back after a restart is found within seconds


class Readiness:
    """This process's state: waiting for its dependencies at start-up, or running."""

    def __init__(self) -> None:
        self.dependencies: list[str] = list(CHECKS)
        self.waiting: dict[str, str] | None = None  # while waiting: dependency -> reason it is down

    def report(self) -> tuple[int, dict]:
        """(HTTP status, body): 200 when every dependency answers, else 503 naming what is down."""
        if self.waiting:
            checks = dict(self.waiting)
            status = "waiting for dependencies"
        else:
            checks = {name: reason for name in self.dependencies if (reason := CHECKS[name]())}
            connections.close_all()  # the probe's own connection; a prefork parent must not hold one
            status = "not ready" if checks else "ready"
        body = {"status": status, "checks": {name: checks.get(name, "ok") for name in self.dependencies}}
        if checks:
            body["down"] = sorted(checks)
        return (503 if checks else 200), body


PROCESS = Readiness()


def wait_for(dependencies: list[str], process: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once every named dependency answers, checking again with backoff (1 s doubling to 4 s).
    Logs one line when a dependency is found down and one when it is back, naming it (never its URL)."""
    PROCESS.dependencies = list(dependencies)
    down_since: dict[str, float] = {}
    delay = BACKOFF_START_SECONDS
    try:
        while True:
            down = {name: reason for name in dependencies if (reason := CHECKS[name]())}
            for name, reason in down.items():
                if name not in down_since:
                    down_since[name] = time.monotonic()
                    log.warning("%s: waiting for %s (%s); checking again with backoff", process, name, reason)
            for name in [name for name in down_since if name not in down]:
                log.warning("%s: %s is back after %.1fs", process, name, time.monotonic() - down_since.pop(name))
            if not down:
                return
            PROCESS.waiting = down
            # A connection that PostgreSQL terminated meanwhile fails every check made on it: open anew.
            connections.close_all()
            sleep(delay)
            delay = min(delay * 2, BACKOFF_CAP_SECONDS)
    finally:
        PROCESS.waiting = None
        connections.close_all()  # opened by the check: a prefork parent must not hand it to its children
