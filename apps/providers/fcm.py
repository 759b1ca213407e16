"""Firebase Cloud Messaging, HTTP v1: one POST per token, on one aiohttp session per process.

At most `concurrency` requests are in flight per process, across all the calls in flight (they share
the process's event loop): a request waits for a slot before its timeout starts. Before, each call
had its own bound and the session's connector queued the rest inside the timeout, so on a loaded
host a request could be sent after 9 s of queueing, time out before its answer and be sent again
(1,145 duplicates in a 200,000-user bench_fanout --provider fcm).

OAuth2 access tokens come from google-auth's service-account credentials (the JSON key's token_uri),
refreshed before they expire. firebase-admin was not used: its endpoint is fixed to
fcm.googleapis.com, and its send_each runs one thread per message.
"""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from . import aio
from .base import Content, Outcome, Result, Target, Transport, TransportError, permanent
from .http_answers import failure, log_unexpected, unexpected_body, unreachable

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
INVALID_TOKEN_CODES = {"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}


class FcmTransport(Transport):
    name = "fcm"
    calls_in_flight = 8  # each call runs on the process's one event loop

    def __init__(self, credentials_file: str, endpoint: str = "https://fcm.googleapis.com", project_id: str = "",
                 timeout: float = 10.0, concurrency: int = 64, rate_per_s: float = 0.0) -> None:
        try:
            self.credentials = service_account.Credentials.from_service_account_file(credentials_file,
                                                                                     scopes=[SCOPE])
        except (OSError, ValueError) as exc:
            raise TransportError(f"FCM credentials file unusable: {exc}", permanent=True) from None
        project = project_id or self.credentials.project_id
        self.url = f"{endpoint.rstrip('/')}/v1/projects/{project}/messages:send"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._token_lock = threading.Lock()

    def access_token(self) -> str:
        with self._token_lock:
            if not self.credentials.valid:
                try:
                    self.credentials.refresh(Request())
                except Exception as exc:  # google-auth raises several types; all mean "no token now"
                    raise TransportError(f"FCM OAuth token refresh failed: {type(exc).__name__}: {exc}"[:300]) from None
            return self.credentials.token

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        headers = {"Authorization": f"Bearer {self.access_token()}", "Content-Type": "application/json"}
        return log_unexpected(self.name, aio.run(self._send_all(content, targets, headers)))

    async def _send_all(self, content: Content, targets: list[Target], headers: dict) -> list[Result]:
        return await asyncio.gather(*(self._send_one(t.address, t.content or content, headers) for t in targets))

    async def _send_one(self, token: str, content: Content, headers: dict) -> Result:
        message = {"token": token, "notification": {"title": content.title, "body": content.body}}
        if content.data:  # FCM data values must be strings
            message["data"] = {str(k): str(v) for k, v in content.data.items()}
        if self._session is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._session = aiohttp.ClientSession(timeout=self.timeout,
                                                  connector=aiohttp.TCPConnector(limit=self.concurrency))
        async with self._slots:
            try:
                async with self._session.post(self.url, data=json.dumps({"message": message}),
                                              headers=headers) as answer:
                    body = await answer.read()
                    status, retry_after = answer.status, answer.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                return unreachable(self.name, exc)
        try:
            parsed = json.loads(body)
        except ValueError:
            return unexpected_body(status)
        if status == 200:
            name = parsed.get("name") if isinstance(parsed, dict) else None
            return Result(Outcome.SENT, provider_id=name) if isinstance(name, str) else unexpected_body(status)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict):
            return unexpected_body(status)
        code = next((d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)
                     and d.get("errorCode")), error.get("status", ""))
        words = f"{code}: {error.get('message', '')}"
        if code in INVALID_TOKEN_CODES and status in (400, 404):
            return permanent(f"HTTP {status}: {words}"[:300], invalid_address=code != "INVALID_ARGUMENT"
                             or "registration token" in str(error.get("message", "")))
        if status == 401:  # the access token was refused: fetch a new one before the retry
            self.credentials.token = None
        return failure(status, words, retry_after)

    def close(self) -> None:
        if self._session is not None:
            aio.run(self._session.close())
            self._session = self._slots = None
