"""The transactional tests' clean-up survives being a deadlock's victim (tests/flush_retry.py): another
connection holds the last table the flush truncates, then, once the flush waits for it, asks for the first,
which the flush holds."""

from __future__ import annotations

import re
import threading
import time

import psycopg2
from django.core.management.color import no_style
from django.db import connection
from django.test import TransactionTestCase

from tests import flush_retry


def _truncate_order() -> list[str]:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    statement = next(s for s in connection.ops.sql_flush(no_style(), tables) if s.startswith("TRUNCATE"))
    return re.findall(r'"([^"]+)"', statement)


def _second_connection() -> psycopg2.extensions.connection:
    settings = connection.settings_dict
    return psycopg2.connect(dbname=settings["NAME"], user=settings["USER"] or None, host=settings["HOST"] or None,
                            port=settings["PORT"] or None, password=settings["PASSWORD"] or None)


def _flush_is_waiting_for_a_lock(cursor, flush_pid: int) -> bool:
    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [flush_pid])
    row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def _holding_both_ends(first: str, last: str, flush_pid: int, holding: threading.Event,
                       done: threading.Event) -> None:
    """Holds `last`, waits until the flush (holding `first`) waits for it, then asks for `first`. This side
    checks for the deadlock only after a minute, the flush after two seconds: the flush is the victim."""
    other, watcher = _second_connection(), _second_connection()
    watcher.autocommit = True
    try:
        with other.cursor() as cursor, watcher.cursor() as watch:
            cursor.execute("SET deadlock_timeout = '60s'")
            cursor.execute(f'LOCK TABLE "{last}" IN ROW EXCLUSIVE MODE')
            holding.set()
            deadline = time.monotonic() + 30
            while not _flush_is_waiting_for_a_lock(watch, flush_pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            cursor.execute(f'LOCK TABLE "{first}" IN ROW EXCLUSIVE MODE')
        other.commit()
    finally:
        other.close()
        watcher.close()
        done.set()


def test_a_flush_chosen_as_a_deadlock_victim_is_retried(transactional_db):
    attempts = []
    original = TransactionTestCase._fixture_teardown.__wrapped__

    def counted(case: TransactionTestCase) -> None:
        attempts.append(time.monotonic())
        original(case)

    order = _truncate_order()
    connection.ensure_connection()
    flush_pid = connection.connection.get_backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '2s'")
    holding, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holding_both_ends, args=(order[0], order[-1], flush_pid, holding, done))
    holder.start()
    assert holding.wait(30)
    case = TransactionTestCase()
    case.databases = {"default"}
    try:
        flush_retry.retrying_on_deadlock(counted)(case)
    finally:
        holder.join(60)
        with connection.cursor() as cursor:
            cursor.execute("RESET deadlock_timeout")
    assert done.is_set()
    assert len(attempts) == 2, attempts  # aborted once as the deadlock's victim, then done


def test_other_errors_are_not_retried():
    from django.db import OperationalError

    calls = []

    def failing(case: object) -> None:
        calls.append(case)
        raise OperationalError("connection refused")

    try:
        flush_retry.retrying_on_deadlock(failing)(object())
    except OperationalError:
        pass
    assert len(calls) == 1
