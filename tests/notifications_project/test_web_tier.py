"""The web tier as production runs it (tests/web_server.py): static files with DEBUG off, many inbox
streams open at once on one worker while other requests still answer, and a refused production start."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from django.core import signing
from django.db import connection

from apps.audience import tokens
from apps.audience.models import Recipient
from apps.inbox.transport import InAppTransport
from apps.providers.base import Content, Target
from tests.web_server import SECRET_KEY, WEB_COMMAND, web_server

BASE_DIR = Path(__file__).resolve().parents[2]
STREAMS = 20


WEB_APPLICATION = "web-tier-test"
POOL_SIZE = 4  # tests/web_server.py's DATABASE_POOL_SIZE


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory) -> str:
    from apps.harness.processes import database_url

    with web_server(tmp_path_factory.mktemp("static"), INBOX_KEEP_ALIVE_SECONDS="1",
                    DATABASE_URL=f"{database_url()}?application_name={WEB_APPLICATION}") as url:
        yield url


def get(url: str) -> tuple[int, str, str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read().decode()


def test_static_files_are_served_with_debug_off(server):
    status, kind, login = get(f"{server}/admin/login/")
    assert status == 200
    linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', login)
    assert "/static/admin/css/base.css" in linked
    for path in [*linked, "/static/admin/js/autocomplete.js"]:
        status, kind, body = get(server + path)
        expected = "text/css" if path.endswith(".css") else "javascript"
        assert status == 200 and expected in kind and body, (path, status, kind)


def recipient_token(recipient: Recipient) -> str:
    return signing.dumps({"r": recipient.pk}, key=SECRET_KEY, salt=tokens.SALT, compress=True)


def deliver(recipient: Recipient, title: str) -> None:
    try:
        InAppTransport().send(Content(title=title), [Target(recipient.pk, "")])
    finally:
        connection.close()  # this thread's own, or the test database cannot be dropped


async def read_until(stream: aiohttp.StreamReader, marker: str, timeout: float) -> str:
    seen = ""
    async with asyncio.timeout(timeout):
        while marker not in seen:
            seen += (await stream.readany()).decode()
    return seen


@pytest.mark.django_db(transaction=True)
def test_many_open_streams_leave_other_requests_fast_and_get_their_events(server):
    fans = [Recipient.objects.create(external_id=f"stream-{uuid.uuid4().hex[:10]}") for _ in range(STREAMS)]

    async def run() -> dict:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            streams = [await session.get(f"{server}/api/inbox/stream?token={recipient_token(fan)}") for fan in fans]
            for response in streams:
                assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
                await read_until(response.content, "retry: 3000", timeout=10)
            health = []
            for _ in range(5):
                started = time.monotonic()
                async with session.get(f"{server}/healthz") as answer:
                    assert answer.status == 200
                health.append(time.monotonic() - started)
            listener = streams[7]
            await asyncio.to_thread(deliver, fans[7], "live to one of twenty")
            event = await read_until(listener.content, "event: message", timeout=10)
            event += await read_until(listener.content, "\n\n", timeout=5)
            keep_alive = await read_until(streams[0].content, ": keep-alive\n\n", timeout=5)
            for response in streams:
                response.close()
            return {"health": health, "event": event, "keep_alive": keep_alive}

    result = asyncio.run(run())
    assert max(result["health"]) < 1.0, result["health"]
    data = json.loads(result["event"].split("data: ", 1)[1].split("\n", 1)[0])
    assert data["title"] == "live to one of twenty"
    assert ": keep-alive" in result["keep_alive"]


def test_a_production_start_without_an_https_base_url_refuses_in_one_line(tmp_path):
    from apps.harness.processes import Stack
    from tests.web_server import production_env

    env = production_env(Stack(), tmp_path, PUBLIC_BASE_URL="http://notify.example.com")
    expected = ("configuration error: PUBLIC_BASE_URL: expected an https:// URL in production"
                " (NOTIFY_DEVELOPMENT=1 for a local run), got 'http://notify.example.com'")
    for argv in ([sys.executable, "manage.py", "check"],
                 [sys.executable, "-m", *WEB_COMMAND, "-b", "127.0.0.1:0"]):
        done = subprocess.run(argv, env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and (done.stdout + done.stderr).strip() == expected, argv
    env["PUBLIC_BASE_URL"] = "https://notify.example.com"
    env["DJANGO_SECRET_KEY"] = "dev-only-insecure-key-change-me"
    done = subprocess.run([sys.executable, "manage.py", "check"], env=env, cwd=BASE_DIR, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "configuration error: DJANGO_SECRET_KEY" in done.stderr


def _web_connections() -> int:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [WEB_APPLICATION])
            return cursor.fetchone()[0]
    finally:
        connection.close()  # this thread's own


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_api_requests_shares_the_workers_connection_pool(server):
    """Under ASGI every request runs in a thread of its own; 60 at once on one worker, each reading the
    database (the API key), use at most DATABASE_POOL_SIZE connections and are all answered."""
    peak = []

    async def run() -> list[int]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def one(index: int) -> int:
                headers = {"Authorization": f"Bearer not-a-key-{index}"}
                async with session.get(f"{server}/api/notifications/1", headers=headers) as answer:
                    return answer.status

            async def watch() -> None:
                while True:
                    peak.append(await asyncio.to_thread(_web_connections))
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            try:
                return list(await asyncio.gather(*(one(i) for i in range(60))))
            finally:
                watcher.cancel()

    statuses = asyncio.run(run())
    assert statuses == [401] * 60, statuses
    assert 0 < max(peak) <= POOL_SIZE, peak
