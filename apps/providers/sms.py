"""SMS through Twilio's Messages API, with the twilio library's asyncio client: one request per message,
up to `concurrency` at a time. TWILIO_API_BASE points the client elsewhere (a regional edge or proxy,
or the local server the tests use); the library otherwise always calls https://api.twilio.com.
"""

from __future__ import annotations

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from . import aio
from .base import Content, Outcome, Result, Target, Transport, permanent
from .http_answers import failure, log_unexpected, unreachable

TWILIO_API = "https://api.twilio.com"
# Twilio error codes that mean the number itself will never take a message.
INVALID_NUMBER_CODES = {21211, 21214, 21217, 21610, 21612, 21614}


class _BaseUrlHttpClient(AsyncTwilioHttpClient):
    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")

    async def request(self, method: str, url: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if url.startswith(TWILIO_API):
            url = self.api_base + url[len(TWILIO_API):]
        return await super().request(method, url, *args, **kwargs)


class TwilioSmsTransport(Transport):
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_base: str = TWILIO_API,
                 timeout: float = 10.0, concurrency: int = 50, rate_per_s: float = 0.0,
                 status_callback: str = "") -> None:
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.status_callback = status_callback  # where Twilio posts delivered/undelivered/failed, if anywhere
        self.api_base, self.timeout = api_base, timeout
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self._client: Client | None = None

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return log_unexpected(self.name, aio.run(aio.map_limited(
            targets, lambda t: self._send_one(t.address, _text(t.content or content)), self.concurrency)))

    async def _send_one(self, number: str, body: str) -> Result:
        if self._client is None:  # made on the loop: the aiohttp session inside belongs to it
            self._client = Client(self.account_sid, self.auth_token,
                                  http_client=_BaseUrlHttpClient(self.api_base, self.timeout))
        try:
            extra = {"status_callback": self.status_callback} if self.status_callback else {}
            message = await self._client.messages.create_async(to=number, from_=self.from_number, body=body, **extra)
        except TwilioRestException as exc:
            words = f"{exc.code}: {exc.msg}" if exc.code else str(exc.msg)
            if exc.code in INVALID_NUMBER_CODES:
                return permanent(f"HTTP {exc.status}: {words}"[:300], invalid_address=True)
            return failure(exc.status, words)
        except Exception as exc:  # aiohttp errors surface as they are, or wrapped by the library
            return unreachable(self.name, exc)
        return Result(Outcome.SENT, provider_id=message.sid or "")

    def close(self) -> None:
        if self._client is not None:
            http_client = self._client.http_client
            if getattr(http_client, "session", None) is not None:
                aio.run(http_client.close())
            self._client = None


def _text(content: Content) -> str:
    return f"{content.title}: {content.body}" if content.title and content.body else content.title or content.body
