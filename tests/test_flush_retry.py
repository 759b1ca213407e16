"""The transactional tests' clean-up survives being a deadlock's victim (tests/flush_retry.py): another
connection holds the last table the flush truncates, then asks for the first, which the flush holds."""

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


def _holding_both_ends(first: str, last: str, flush_waiting: threading.Event, done: threading.Event) -> None:
    settings = connection.settings_dict
    other = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"] or None, host=settings["HOST"] or None,
                             port=settings["PORT"] or None, password=settings["PASSWORD"] or None)
    try:
        with other.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{last}" IN ROW EXCLUSIVE MODE')
            flush_waiting.wait(10)
            time.sleep(0.5)  # the flush is now waiting for `last`, holding `first`
            cursor.execute(f'LOCK TABLE "{first}" IN ROW EXCLUSIVE MODE')
        other.commit()
    finally:
        other.close()
        done.set()


def test_a_flush_chosen_as_a_deadlock_victim_is_retried(transactional_db):
    attempts = []
    original = TransactionTestCase._fixture_teardown.__wrapped__

    def counted(case: TransactionTestCase) -> None:
        attempts.append(time.monotonic())
        flush_waiting.set()
        original(case)

    order = _truncate_order()
    flush_waiting, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holding_both_ends, args=(order[0], order[-1], flush_waiting, done))
    holder.start()
    case = TransactionTestCase()
    case.databases = {"default"}
    flush_retry.retrying_on_deadlock(counted)(case)
    holder.join(15)
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
