"""The fake push provider: a real HTTP server on 127.0.0.1 for local runs, tests and benchmarks.

It holds each answer for `latency_ms`, as FCM and APNs take tens of milliseconds, and counts every
token it receives so that a run can be checked for misses and duplicates. Seeded tokens look like
"fake:<device id>:<hex>"; their counts live in a bytearray indexed by device id (2.5 MB for 2.5M
devices, where a dict would take hundreds), other tokens in a dict.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request

from aiohttp import web


class TokenCounter:
    def __init__(self) -> None:
        self.counts = bytearray()
        self.other: dict[str, int] = {}
        self.received = 0
        self.duplicates = 0
        self.unique = 0

    def add(self, token: str) -> None:
        self.received += 1
        count = self._bump(token)
        if count == 1:
            self.unique += 1
        else:
            self.duplicates += 1

    def _bump(self, token: str) -> int:
        if token.startswith("fake:"):
            device_id = int(token[5:token.index(":", 5)])
            if device_id >= len(self.counts):
                self.counts.extend(bytes(max(device_id + 1 - len(self.counts), 1 << 20)))
            count = min(self.counts[device_id] + 1, 255)
            self.counts[device_id] = count
            return count
        count = self.other.get(token, 0) + 1
        self.other[token] = count
        return count

    def stats(self) -> dict:
        return {"received": self.received, "unique": self.unique, "duplicates": self.duplicates}


def make_app(latency_ms: float = 0.0) -> web.Application:
    counter = TokenCounter()
    batch_ids = itertools.count(1)
    state = {"requests": 0, "latency": latency_ms / 1000.0}

    async def push(request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
            tokens = payload["tokens"]
            if not isinstance(tokens, list) or not 0 < len(tokens) <= 500:
                raise ValueError("tokens must be a list of 1..500")
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": "InvalidArgument", "detail": str(exc)}, status=400)
        state["requests"] += 1
        failed = {}
        for index, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                failed[str(index)] = "InvalidToken"
                continue
            counter.add(token)
        if state["latency"]:
            await asyncio.sleep(state["latency"])
        return web.json_response({"batch": f"b{next(batch_ids)}", "failed": failed})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**counter.stats(), "requests": state["requests"]})




    async def reset(request: web.Request) -> web.Response:
        nonlocal counter
        counter = TokenCounter()
        state["requests"] = 0
        if "latency_ms" in request.query:
            state["latency"] = float(request.query["latency_ms"]) / 1000.0
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.add_routes([web.post("/v1/push", push), web.get("/stats", stats), web.post("/reset", reset)])
    return app


class FakeProviderControl:
    """The fake provider's control endpoints, for benchmarks and tests: counts and reset."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def stats(self) -> dict:
        """{"received", "unique", "duplicates", "requests"} since the last reset."""
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.base_url}/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()


def serve(host: str, port: int, latency_ms: float) -> None:
    web.run_app(make_app(latency_ms), host=host, port=port, access_log=None, print=None)
