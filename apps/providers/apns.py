"""Apple Push Notification service: HTTP/2 with token (JWT, ES256) authentication.

httpx with h2 multiplexes a batch's requests as streams on one connection, as Apple asks. At most
`concurrency` requests are in flight per process, across all the calls in flight (they share the
process's event loop), fewer than the streams a server allows at once (100 is common): a request
waits for a slot before its timeout starts. Before, each call had its own bound of 200, the rest
waited for a stream inside httpx and inside the timeout, and answers that came after it were sent
again (119 duplicates for 2,381 devices in bench_fanout --provider apns --users 2000; 66 with this
bound: against the local HTTP/2 server some requests still fail with WriteError, cause not found). aioapns
was not used: its host is fixed to Apple's servers, so it cannot be pointed at another endpoint
(a regional proxy, or the local HTTP/2 server the tests use) without patching its classes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import jwt

from . import aio
from .base import Content, Outcome, Result, Target, Transport, TransportError, permanent, transient
from .http_answers import failure, log_unexpected, unexpected_body, unreachable

TOKEN_LIFETIME_SECONDS = 50 * 60  # Apple refuses provider tokens older than an hour
INVALID_TOKEN_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}


class ApnsTransport(Transport):
    name = "apns"
    calls_in_flight = 8  # each call runs on the process's one event loop

    def __init__(self, key_file: str, key_id: str, team_id: str, topic: str,
                 endpoint: str = "https://api.push.apple.com", ca_file: str = "", timeout: float = 10.0,
                 concurrency: int = 64, rate_per_s: float = 0.0) -> None:
        try:
            with open(key_file) as file:
                self.signing_key = file.read()
        except OSError as exc:
            raise TransportError(f"APNs key file unreadable: {exc.strerror}", permanent=True) from None
        self.key_id, self.team_id, self.topic = key_id, team_id, topic
        self.endpoint = endpoint.rstrip("/")
        self.verify: str | bool = ca_file or True
        self.timeout = timeout
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._token = ("", 0.0)
        self._token_lock = threading.Lock()

    def provider_token(self) -> str:
        with self._token_lock:
            token, made_at = self._token
            if not token or time.time() - made_at > TOKEN_LIFETIME_SECONDS:
                now = time.time()
                token = jwt.encode({"iss": self.team_id, "iat": int(now)}, self.signing_key, algorithm="ES256",
                                   headers={"kid": self.key_id})
                self._token = (token, now)
            return token

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        headers = {"authorization": f"bearer {self.provider_token()}", "apns-topic": self.topic,
                   "apns-push-type": "alert", "apns-priority": "10"}
        return log_unexpected(self.name, aio.run(self._send_all(content, targets, headers)))

    async def _send_all(self, content: Content, targets: list[Target], headers: dict) -> list[Result]:
        return await asyncio.gather(*(self._send_one(t.address, _payload(t.content or content), headers)
                                      for t in targets))

    async def _send_one(self, device_token: str, payload: str, headers: dict) -> Result:
        if self._client is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._client = httpx.AsyncClient(http2=True, verify=self.verify, timeout=self.timeout)
        async with self._slots:
            try:
                answer = await self._client.post(f"{self.endpoint}/3/device/{device_token}", content=payload,
                                                 headers=headers)
            except httpx.HTTPError as exc:
                return unreachable(self.name, exc)
        if answer.status_code == 200:
            return Result(Outcome.SENT, provider_id=answer.headers.get("apns-id", ""))
        try:
            reason = answer.json()["reason"]
        except (ValueError, KeyError, TypeError):
            return unexpected_body(answer.status_code)
        if reason in INVALID_TOKEN_REASONS:
            return permanent(f"HTTP {answer.status_code}: {reason}", invalid_address=True)
        if reason == "ExpiredProviderToken":
            self._token = ("", 0.0)
            return transient(f"HTTP 403: {reason}")  # a new token on the next attempt
        return failure(answer.status_code, reason, answer.headers.get("retry-after"))

    def close(self) -> None:
        if self._client is not None:
            aio.run(self._client.aclose())
            self._client = self._slots = None


def _payload(content: Content) -> str:
    return json.dumps({"aps": {"alert": {"title": content.title, "body": content.body}}, **content.data})
