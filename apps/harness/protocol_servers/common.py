"""What every protocol server shares: a thread to run one in-process (tests), a free port, the
request log the adapter tests read, and the per-device counts and quota the benchmark reads.

`Counts` counts what a server accepted per device the way the fake provider does
(fake_server.TokenCounter: seeded tokens in byte arrays by their device key, other tokens in a
dict), plus the 429s it answered; `control_app` serves them at GET /stats and zeroes them at POST
/reset, with the fake provider's answers, so FakeProviderControl reads any of them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

from apps.harness.fake_server import TokenCounter


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    """Every request a server accepted, in full (tests only: it grows without bound)."""

    requests: list = field(default_factory=list)


class Quota:
    """A provider's send quota as a token bucket: `rate_per_s`, up to `burst_s` seconds of it at once.
    0 means unlimited."""

    def __init__(self, rate_per_s: float = 0.0, burst_s: float = 2.0) -> None:
        self.rate, self.capacity = rate_per_s, rate_per_s * burst_s
        self.tokens, self.at = self.capacity, time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Counts:
    """What a server received since the last reset, per device; latency_s holds each answer."""

    def __init__(self, latency_ms: float = 0.0, quota: Quota | None = None) -> None:
        self.latency_s = latency_ms / 1000.0
        self.quota = quota or Quota()
        self.reset()

    def reset(self) -> None:
        self.tokens = TokenCounter()
        self.requests = 0
        self.throttled = 0

    def request(self, size: int) -> bool:
        """Count a request of `size` bytes; False if it is over the quota (answer 429, count it)."""
        self.requests += 1
        self.tokens.bytes += size
        if self.quota.take():
            return True
        self.throttled += 1
        return False

    def accepted(self, token: str) -> None:
        self.tokens.add(token)

    async def hold(self) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    def stats(self) -> dict:
        return {**self.tokens.stats(), "requests": self.requests, "throttled": self.throttled,
                "injected": {"429": self.throttled} if self.throttled else {}}


def control_app(counts: Counts, app: web.Application | None = None) -> web.Application:
    """GET /stats and POST /reset[?latency_ms=MS] (on `app` if given, else on an app of their own)."""

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts.stats())

    async def reset(request: web.Request) -> web.Response:
        try:
            latency = float(request.query.get("latency_ms", counts.latency_s * 1000)) / 1000.0
        except ValueError:
            return web.json_response({"error": "InvalidArgument", "detail": "latency_ms must be a number"},
                                     status=400)
        counts.reset()
        counts.latency_s = latency
        return web.json_response({"ok": True})

    app = app if app is not None else web.Application()
    app.add_routes([web.get("/stats", stats), web.post("/reset", reset)])
    return app


class ServerThread:
    """An asyncio server on its own loop and thread; start() returns once it listens."""

    def __init__(self, start_coroutine) -> None:  # noqa: ANN001
        self.start_coroutine = start_coroutine
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        cleanup = await self.start_coroutine(self.stop_event)
        self.ready.set()
        await self.stop_event.wait()
        await cleanup()

    def start(self) -> ServerThread:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("server did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


async def start_aiohttp(app: web.Application, port: int):  # noqa: ANN201
    """Listen on 127.0.0.1:port; returns the coroutine function that stops it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner.cleanup


def serve_aiohttp(app: web.Application) -> tuple[ServerThread, str]:
    port = free_port()

    async def start(stop_event: asyncio.Event):  # noqa: ANN202
        return await start_aiohttp(app, port)

    return ServerThread(start).start(), f"http://127.0.0.1:{port}"
