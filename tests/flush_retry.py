"""The transactional tests' clean-up (pytest-django's flush, a TRUNCATE of every table) retried when
PostgreSQL picks it as a deadlock's victim. The session stack's workers and bridges keep writing while a
test ends: a TRUNCATE that takes its locks in table order can meet one of their transactions holding
another table, and PostgreSQL then aborts one side. The flush runs in one transaction, so a retry starts
clean; the stack's side retries on its own."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import TransactionTestCase

DEADLOCK_DETECTED = "40P01"
ATTEMPTS = 5


def is_deadlock(exc: BaseException | None) -> bool:
    """Along the chain of causes: flush wraps the database's error in a CommandError."""
    while exc is not None:
        if getattr(exc, "pgcode", None) == DEADLOCK_DETECTED:
            return True
        exc = exc.__cause__
    return False


def retrying_on_deadlock(teardown: Callable[[TransactionTestCase], None]) -> Callable[[TransactionTestCase], None]:
    def retried(self: TransactionTestCase) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return teardown(self)
            except (CommandError, OperationalError) as exc:
                if not is_deadlock(exc) or attempt == ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)

    retried.__wrapped__ = teardown  # type: ignore[attr-defined]
    return retried


def install() -> None:
    if not hasattr(TransactionTestCase._fixture_teardown, "__wrapped__"):
        TransactionTestCase._fixture_teardown = retrying_on_deadlock(TransactionTestCase._fixture_teardown)
