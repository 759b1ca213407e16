"""PostgreSQL through a connection pool per process: the web tier's database engine (DATABASE_POOL_SIZE).

Under ASGI each request's sync code runs in a thread of its own (asgiref's ThreadSensitiveContext), so
Django's persistent connections (CONN_MAX_AGE) are never reused: every request would open, authenticate
and close a PostgreSQL connection, a server process forked each time, and a burst of requests in flight
opens as many connections as there are requests ("too many clients"). Here Django's connect takes an idle
connection from its process's pool and close gives it back, so at most DATABASE_POOL_SIZE connections per
process exist; a request that finds them all busy waits up to DATABASE_POOL_TIMEOUT seconds, then fails as
a database outage does (the API answers 503).

Django's own pool needs psycopg 3; the pipeline's COPY paths use psycopg2. django-db-connection-pool
(SQLAlchemy's pool) shares its connections with a forked child (gunicorn --preload, Celery prefork); this
pool belongs to the process that made it, and a child starts its own.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

DEFAULT_TIMEOUT = 5.0
# An idle connection is pinged before reuse after this long, so one that PostgreSQL dropped (a restart, an
# idle timeout) is replaced instead of failing a request.
PING_AFTER_IDLE_SECONDS = 1.0


class PoolExhausted(base.Database.OperationalError):
    pass


class ConnectionPool:
    def __init__(self, size: int, timeout: float) -> None:
        self.size, self.timeout, self.pid = size, timeout, os.getpid()
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def take(self, connect):  # noqa: ANN001, ANN201 - a psycopg2 connection
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolExhausted(f"all {self.size} database connections of this process stayed busy for "
                                f"{self.timeout:g} s")
        try:
            while True:
                try:
                    connection, idle_since = self._idle.get_nowait()
                except queue.Empty:
                    return connect()
                if _usable(connection, time.monotonic() - idle_since):
                    return connection
                _close_quietly(connection)
        except BaseException:
            self._slots.release()
            raise

    def give_back(self, connection) -> None:  # noqa: ANN001
        """A connection in a transaction is rolled back; a broken one is closed instead of kept."""
        try:
            if not connection.closed and connection.info.transaction_status != _IDLE:
                connection.rollback()
            if connection.closed or connection.info.transaction_status != _IDLE:
                _close_quietly(connection)
            else:
                self._idle.put((connection, time.monotonic()))
        except base.Database.Error:
            _close_quietly(connection)
        finally:
            self._slots.release()

    def forget(self, connection) -> None:  # noqa: ANN001
        """A connection whose Django wrapper vanished without closing (its thread ended): closed, slot freed."""
        _close_quietly(connection)
        self._slots.release()

    def close_idle(self) -> None:
        while True:
            try:
                connection, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(connection)


_IDLE = base.Database.extensions.TRANSACTION_STATUS_IDLE
_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


def pool_for(alias: str, size: int, timeout: float) -> ConnectionPool:
    with _pools_lock:
        pool = _pools.get(alias)
        if pool is None or pool.pid != os.getpid():  # inherited across a fork: the parent's sockets, untouched
            pool = _pools[alias] = ConnectionPool(size, timeout)
        return pool


def _usable(connection, idle_seconds: float) -> bool:  # noqa: ANN001
    if connection.closed:
        return False
    if idle_seconds < PING_AFTER_IDLE_SECONDS:
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except base.Database.Error:
        return False


def _close_quietly(connection) -> None:  # noqa: ANN001
    try:
        connection.close()
    except base.Database.Error:
        pass


class DatabaseWrapper(base.DatabaseWrapper):
    def _pool(self) -> ConnectionPool:
        return pool_for(self.alias, int(self.settings_dict["POOL_SIZE"]),
                        float(self.settings_dict.get("POOL_TIMEOUT", DEFAULT_TIMEOUT)))

    def get_new_connection(self, conn_params):  # noqa: ANN001, ANN201
        if "isolation_level" in self.settings_dict["OPTIONS"]:
            raise ImproperlyConfigured("the pooled engine keeps PostgreSQL's default isolation level")
        self.isolation_level = base.IsolationLevel.READ_COMMITTED
        pool = self._pool()
        connection = pool.take(lambda: super(DatabaseWrapper, self).get_new_connection(conn_params))
        self._checkout = weakref.finalize(self, pool.forget, connection)
        self._checked_out_from = pool
        return connection

    def _close(self) -> None:
        if self.connection is None:
            return
        checkout = getattr(self, "_checkout", None)
        if checkout is None or not checkout.detach():  # not from the pool (or already handed back)
            with self.wrap_database_errors:
                self.connection.close()
            return
        with self.wrap_database_errors:
            self._checked_out_from.give_back(self.connection)
        self.connection = None
