"""The fake push provider: a real HTTP server on 127.0.0.1 for local runs, tests and benchmarks.

It holds each answer for `latency_ms`, as FCM and APNs take tens of milliseconds, and counts every
token it accepted so that a run can be checked for misses and duplicates. Faults are injected per
run (`Faults`): a share of requests answered 5xx, 429 with Retry-After, held past the client's
timeout or dropped without an answer (none of those count as received), a share answered slowly, and
a share of tokens answered "Unregistered". Which
tokens are invalid is decided by their hash, so a token stays invalid when it is retried. It accepts
tokens of any shape and counts them per token. Seeded tokens carry their device's key (fake tokens
"fake:<recipient id>:<hex>", realistic ones 11 digits at a fixed place, see
apps/harness/device_profiles.py): their counts live in byte arrays indexed by that key (2.5 MB for
2.5M devices, where a dict of 160-character tokens would take hundreds), other tokens in a dict.
It also counts the bytes of the requests it is sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import urllib.parse
import urllib.request
import zlib
from dataclasses import asdict, dataclass, fields

from aiohttp import web

# Larger keys than this are counted in the dict, so that a stray token cannot grow an array without bound.
_MAX_ARRAY_KEY = 1 << 26
_WEBPUSH_HEAD = '{"endpoint":"'


class TokenCounter:
    def __init__(self) -> None:
        self.counts = {"fake": bytearray(), "seeded": bytearray(), "email": bytearray()}
        self.other: dict[str, int] = {}
        self.received = 0
        self.duplicates = 0
        self.unique = 0
        self.bytes = 0

    def add(self, token: str) -> None:
        self.received += 1
        count = self._bump(token)
        if count == 1:
            self.unique += 1
        else:
            self.duplicates += 1

    def _bump(self, token: str) -> int:
        kind, key = seeded_key(token)
        if kind and key < _MAX_ARRAY_KEY:
            counts = self.counts[kind]
            if key >= len(counts):
                counts.extend(bytes(max(key + 1 - len(counts), 1 << 20)))
            count = min(counts[key] + 1, 255)
            counts[key] = count
            return count
        count = self.other.get(token, 0) + 1
        self.other[token] = count
        return count

    def stats(self) -> dict:
        return {"received": self.received, "unique": self.unique, "duplicates": self.duplicates, "bytes": self.bytes}


def seeded_key(token: str) -> tuple[str, int]:
    """("fake", recipient id) for fake:<10 digits>:<hash>; ("seeded", device key) for a realistic
    seeded token (FCM "seed<key>...", APNs "5eed<key>...", Web Push with ".../seed<key>..." as its
    endpoint); ("email", n) for a seeded fan's address fan<9 digits>@...; ("", 0) for any other."""
    if token.startswith("fan") and token[12:13] == "@":
        digits = token[3:12]
        return ("email", int(digits)) if digits.isascii() and digits.isdigit() else ("", 0)
    if token.startswith("fake:"):
        digits = token[5:].partition(":")[0]
        return ("fake", int(digits)) if digits.isascii() and digits.isdigit() else ("", 0)
    if token[1:4] == "eed" and token[0] in "s5":
        digits = token[4:15]
    elif token.startswith(_WEBPUSH_HEAD):
        at = token.find("/seed", len(_WEBPUSH_HEAD), 100)
        digits = token[at + 5:at + 16] if at > 0 else ""
    else:
        return "", 0
    return ("seeded", int(digits)) if len(digits) == 11 and digits.isascii() and digits.isdigit() else ("", 0)


@dataclass
class Faults:
    """Shares from 0 to 1, set per run; the timeout hold must outlast the client's timeout."""

    fail_5xx: float = 0.0
    fail_429: float = 0.0
    fail_timeout: float = 0.0
    fail_invalid: float = 0.0
    fail_unavailable: float = 0.0  # per token, transient: only those tokens should be sent again
    fail_reset: float = 0.0  # the connection is dropped without an answer
    fail_stuck: float = 0.0  # per token, by its hash: answered "Unavailable" on every attempt
    slow: float = 0.0  # answered normally, after slow_ms (under the client's timeout)
    retry_after_s: float = 1.0
    timeout_hold_s: float = 12.0
    slow_ms: float = 500.0

    @classmethod
    def from_query(cls, query: dict) -> Faults:
        values = {}
        for f in fields(cls):
            if f.name in query:
                value = float(query[f.name])
                if (f.name.startswith("fail_") or f.name == "slow") and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{f.name} must be between 0 and 1")
                values[f.name] = value
        return cls(**values)

    def is_invalid(self, token: str) -> bool:
        return self.fail_invalid > 0 and zlib.crc32(token.encode()) % 10_000 < self.fail_invalid * 10_000

    def is_stuck(self, token: str) -> bool:
        return self.fail_stuck > 0 and zlib.crc32(b"stuck:" + token.encode()) % 10_000 < self.fail_stuck * 10_000


def make_app(latency_ms: float = 0.0, faults: Faults | None = None) -> web.Application:
    counter = TokenCounter()
    batch_ids = itertools.count(1)
    state = {"requests": 0, "latency": latency_ms / 1000.0, "faults": faults or Faults(), "injected": {}}

    def inject(kind: str) -> None:
        state["injected"][kind] = state["injected"].get(kind, 0) + 1

    async def push(request: web.Request) -> web.Response:
        body = await request.read()
        counter.bytes += len(body)
        try:
            payload = json.loads(body)
            tokens = payload["tokens"]
            if not isinstance(tokens, list) or not 0 < len(tokens) <= 500:
                raise ValueError("tokens must be a list of 1..500")
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": "InvalidArgument", "detail": str(exc)}, status=400)
        state["requests"] += 1
        faults: Faults = state["faults"]
        # A low-discrepancy sequence, not random(): any run of requests gets its faults in proportion,
        # so even a small run sees every kind it asked for.
        roll = (state["requests"] * 0.6180339887498949) % 1.0
        if roll < faults.fail_timeout:
            inject("timeout")
            await asyncio.sleep(faults.timeout_hold_s)
            return web.json_response({"error": "Timeout"}, status=504)
        roll -= faults.fail_timeout
        if roll < faults.fail_5xx:
            inject("5xx")
            return web.json_response({"error": "Unavailable"}, status=503)
        roll -= faults.fail_5xx
        if roll < faults.fail_reset:
            inject("reset")
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client: its connection is gone
        roll -= faults.fail_reset
        if roll < faults.slow:
            inject("slow")
            await asyncio.sleep(faults.slow_ms / 1000.0)
            roll = 1.0  # and then answered normally
        roll -= faults.slow
        if roll < faults.fail_429:
            inject("429")
            return web.json_response({"error": "QuotaExceeded"}, status=429,
                                     headers={"Retry-After": f"{faults.retry_after_s:g}"})
        failed = {}
        for index, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                failed[str(index)] = "InvalidToken"
            elif faults.is_invalid(token):
                inject("invalid")
                failed[str(index)] = "Unregistered"
            elif faults.is_stuck(token) or faults.fail_unavailable and random.random() < faults.fail_unavailable:
                inject("unavailable")
                failed[str(index)] = "Unavailable"
            else:
                counter.add(token)
        if state["latency"]:
            await asyncio.sleep(state["latency"])
        return web.json_response({"batch": f"b{next(batch_ids)}", "failed": failed})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**counter.stats(), "requests": state["requests"], "injected": state["injected"]})

    async def reset(request: web.Request) -> web.Response:
        """Zero the counts; `latency_ms` and the Faults fields, if given, set this run's behaviour."""
        nonlocal counter
        try:
            faults = Faults.from_query(request.query)
            latency = float(request.query.get("latency_ms", state["latency"] * 1000)) / 1000.0
        except ValueError as exc:
            return web.json_response({"error": "InvalidArgument", "detail": str(exc)}, status=400)
        counter = TokenCounter()
        state.update(requests=0, latency=latency, faults=faults, injected={})
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.add_routes([web.post("/v1/push", push), web.get("/stats", stats), web.post("/reset", reset)])
    return app


class FakeProviderControl:
    """The fake provider's control endpoints, for benchmarks and tests: counts and reset."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def stats(self) -> dict:
        """{"received", "unique", "duplicates", "bytes", "requests", "injected"} since the last reset."""
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as response:
            return json.loads(response.read())

    def reset(self, faults: Faults | None = None, latency_ms: float | None = None) -> None:
        """Zero the counts and set the faults (none if not given) for what follows."""
        query = asdict(faults or Faults())
        if latency_ms is not None:
            query["latency_ms"] = latency_ms
        request = urllib.request.Request(f"{self.base_url}/reset?{urllib.parse.urlencode(query)}", method="POST")
        urllib.request.urlopen(request, timeout=10).read()


def serve(host: str, port: int, latency_ms: float) -> None:
    web.run_app(make_app(latency_ms), host=host, port=port, access_log=None, print=None)
