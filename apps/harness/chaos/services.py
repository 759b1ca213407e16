"""The dependencies the chaos run breaks: a Redis of its own, and this database's connections."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from django.db import connection

from apps.streaming.local_broker import free_port, wait_for_port


class RedisServer:
    """A private redis-server for the run, with an append-only file as a broker's Redis needs.

    A restart is a real one: SHUTDOWN (which flushes the AOF), a pause with nothing listening, and a
    new process on the same port that reloads the AOF. The machine's shared Redis is never touched.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--dir", str(self.directory), "--logfile", str(self.directory / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port("127.0.0.1", self.port)
        deadline = time.monotonic() + 30
        while True:  # the port opens before the AOF is loaded
            try:
                redis.Redis(port=self.port, socket_timeout=2).ping()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def restart(self, down_seconds: float) -> None:
        try:
            redis.Redis(port=self.port, socket_timeout=10).shutdown()
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits
        if self.process:
            self.process.wait(30)
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def terminate_database_connections() -> int:
    """pg_terminate_backend on every other connection to this database; returns how many were killed."""
    with connection.cursor() as cursor:
        cursor.execute("""SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE datname = current_database() AND pid <> pg_backend_pid()""")
        return cursor.fetchone()[0]
