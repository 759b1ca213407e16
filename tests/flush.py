"""The transactional tests' clean-up (pytest-django's flush, run after every transactional test).

It empties the tables with DELETE in one round trip, foreign keys checked at commit, instead of Django's
TRUNCATE: on tables of a few rows that is 2 ms against 200 ms (TRUNCATE makes new files for every table and
index), and DELETE's lock does not wait for the readers that the session stack's workers and bridges keep
open. It is still retried when PostgreSQL picks it as a deadlock's victim: those processes keep writing
while a test ends, and a flush that meets one of their transactions holding a table it needs can be
aborted. The flush runs in one transaction, so a retry starts clean; the stack's side retries on its own."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.commands import flush as flush_command
from django.db import OperationalError
from django.db.backends.postgresql.operations import DatabaseOperations
from django.db.models.signals import post_migrate
from django.test import TransactionTestCase

DEADLOCK_DETECTED = "40P01"
# Rows that migrate makes and that no test changes: kept, so post_migrate finds them instead of making them again.
KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})
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


def deleting(truncate: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """DatabaseOperations.sql_flush emptying the tables with DELETE, but for KEPT_TABLES; with sequences to
    reset or cascades asked for, Django's TRUNCATE as before. Django's foreign keys are deferrable, so the
    order is free."""
    def sql_flush(self: DatabaseOperations, style, tables: list[str], *, reset_sequences: bool = False,  # noqa: ANN001
                  allow_cascade: bool = False) -> list[str]:
        if reset_sequences or allow_cascade or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        deletes = "; ".join(f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))}"
                            for table in tables if table not in KEPT_TABLES)
        return [f"SET CONSTRAINTS ALL DEFERRED; {deletes}"]

    sql_flush.__wrapped__ = truncate  # type: ignore[attr-defined]
    return sql_flush


def post_migrate_once(verbosity: int, interactive: bool, db: str, **kwargs: object) -> None:
    """The flush's post_migrate, sent once instead of once per app: with KEPT_TABLES kept, the per-app
    handlers (content types, permissions) have nothing to make, and the others (the campaign groups) need
    one run. A tenth of the queries of Django's way."""
    first = next(app_config for app_config in apps.get_app_configs() if app_config.models_module is not None)
    post_migrate.send(sender=first, app_config=first, verbosity=verbosity, interactive=interactive, using=db,
                      **kwargs)


def install() -> None:
    if not hasattr(TransactionTestCase._fixture_teardown, "__wrapped__"):
        TransactionTestCase._fixture_teardown = retrying_on_deadlock(TransactionTestCase._fixture_teardown)
    if not hasattr(DatabaseOperations.sql_flush, "__wrapped__"):
        DatabaseOperations.sql_flush = deleting(DatabaseOperations.sql_flush)
        flush_command.emit_post_migrate_signal = post_migrate_once
