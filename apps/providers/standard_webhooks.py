"""Signed POSTs in the Standard Webhooks format (https://www.standardwebhooks.com), for the webhook
channel and the status callbacks to calling services alike.

Each endpoint has its own secret (`whsec_` + base64 of 32 random bytes). A request carries
`webhook-id` (the same on every retry of one message, so the receiver can drop a repeat),
`webhook-timestamp` (the time of this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">`), made by the `standardwebhooks` library, which receivers can verify with
the same library in their own language.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from standardwebhooks.webhooks import Webhook

from . import aio, outbound

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers (and the JSON content type) for one attempt."""
    at = datetime.fromtimestamp(int(timestamp if timestamp is not None else time.time()), tz=UTC)
    signature = Webhook(secret).sign(message_id, at, body.decode())
    return {"Content-Type": "application/json", "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


@dataclass(frozen=True)
class Answer:
    """One attempt: the HTTP status (None when there was no answer), how long it took, what went wrong."""

    status: int | None
    latency_ms: float
    error: str = ""
    retry_after: str | None = None
    refused: bool = False  # the URL may not be called at all (SSRF guard)

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def worth_retrying(self) -> bool:
        """No answer, a timeout, 408, 429 or 5xx; any other 4xx means the receiver refuses it."""
        if self.refused:
            return False
        return self.status is None or self.status in (408, 429) or self.status >= 500


def post(url: str, secret: str, message_id: str, body: bytes, timeout: float) -> Answer:
    """One signed POST from synchronous code (a Celery task), through the SSRF guard."""
    return aio.run(_post(url, secret, message_id, body, timeout), timeout + 5)


async def _post(url: str, secret: str, message_id: str, body: bytes, timeout: float) -> Answer:
    started = time.monotonic()

    def took() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    refused = await outbound.refusal(url)
    if refused:
        return Answer(None, took(), f"URL refused: {refused}", refused=True)
    try:
        async with outbound.session(timeout) as session, session.post(
                url, data=body, headers=signed_headers(secret, message_id, body), allow_redirects=False) as answer:
            words = "" if 200 <= answer.status < 300 else (await answer.text(errors="replace"))[:200]
            return Answer(answer.status, took(), f"HTTP {answer.status}: {words}" if words or answer.status >= 300
                          else "", answer.headers.get("Retry-After"))
    except outbound.Refused as exc:
        return Answer(None, took(), f"URL refused: {exc}", refused=True)
    except TimeoutError:
        return Answer(None, took(), f"no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Answer(None, took(), f"unreachable: {type(exc).__name__}: {exc}"[:300])
