"""The web tier's pooled PostgreSQL engine (apps/core/pooled_postgresql) against the real server: each
request thread gets its own Django wrapper, as under ASGI, and the pool bounds and reuses what they open."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import OperationalError, connection

from apps.core.pooled_postgresql import base as pooled

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wrapper_factory():
    made = []
    alias = "default"  # Django's hooks look the alias up; the pool of that name is the test's alone
    pooled._pools.pop(alias, None)

    def make(size: int = 2, timeout: float = 1.0, keep: bool = True) -> pooled.DatabaseWrapper:
        settings = {**connection.settings_dict, "ENGINE": "apps.core.pooled_postgresql", "POOL_SIZE": size,
                    "POOL_TIMEOUT": timeout, "CONN_MAX_AGE": 0}
        wrapper = pooled.DatabaseWrapper(settings, alias=alias)
        if keep:
            made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        if wrapper._thread_ident == threading.get_ident():  # the others closed themselves in their thread
            wrapper.close()
    pooled.pool_for(alias, 1, 1).close_idle()
    pooled._pools.pop(alias, None)


def _backend_pid(wrapper: pooled.DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _in_thread(work):  # noqa: ANN001, ANN202
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(30)
    return result[0]


def test_each_thread_reuses_the_connection_the_last_one_gave_back(wrapper_factory):
    def request() -> int:
        wrapper = wrapper_factory()
        try:
            return _backend_pid(wrapper)
        finally:
            wrapper.close()

    pids = {_in_thread(request) for _ in range(5)}
    assert len(pids) == 1, pids


def test_the_pool_bounds_connections_and_a_request_over_it_fails_as_an_outage(wrapper_factory):
    first, second, third = (wrapper_factory(size=2, timeout=0.3) for _ in range(3))
    held = {_backend_pid(first), _backend_pid(second)}
    assert len(held) == 2
    with pytest.raises(OperationalError, match="database connections of this process stayed busy"):
        _backend_pid(third)
    first.close()
    assert _backend_pid(third) in held  # the slot freed, and the connection with it


def test_a_connection_given_back_inside_a_transaction_is_rolled_back(wrapper_factory):
    writer = wrapper_factory(size=1)
    with writer.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS pool_probe (n int)")
    writer.set_autocommit(False)
    with writer.cursor() as cursor:
        cursor.execute("INSERT INTO pool_probe VALUES (1)")
    writer.close()  # abandoned mid-transaction, as a request that raised
    reader = wrapper_factory(size=1)
    try:
        with reader.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pool_probe")
            assert cursor.fetchone()[0] == 0
    finally:
        with reader.cursor() as cursor:
            cursor.execute("DROP TABLE pool_probe")


def test_a_connection_the_server_dropped_while_idle_is_replaced(wrapper_factory, monkeypatch):
    monkeypatch.setattr(pooled, "PING_AFTER_IDLE_SECONDS", 0.0)
    wrapper = wrapper_factory()
    before = _backend_pid(wrapper)
    wrapper.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [before])
    again = wrapper_factory()
    assert _backend_pid(again) != before


def test_a_thread_that_ends_without_closing_frees_its_slot(wrapper_factory):
    import gc

    def leaky() -> int:
        return _backend_pid(wrapper_factory(size=1, timeout=0.5, keep=False))  # never closed

    leaked = _in_thread(leaky)
    gc.collect()
    assert _backend_pid(wrapper_factory(size=1, timeout=0.5)) != leaked  # the slot is free; that one closed


def test_a_forked_child_starts_a_pool_of_its_own(wrapper_factory):
    wrapper = wrapper_factory()
    parent_pid = _backend_pid(wrapper)
    wrapper.close()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            os.write(write, str(_backend_pid(wrapper_factory())).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    child_backend = int(os.read(read, 32) or 0)
    assert child_backend and child_backend != parent_pid
    assert _backend_pid(wrapper_factory()) == parent_pid  # the parent's idle connection, untouched
