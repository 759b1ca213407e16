"""Webhooks: a JSON POST to the recipient's URL, signed with HMAC-SHA256 so the receiver can trust it.

Signature header (as Stripe and others do): `Notify-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the shared secret>`. Receivers check the HMAC and reject old timestamps (replays).
A 2xx answer is delivery; 410 Gone means the endpoint is withdrawn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import aiohttp

from . import aio, outbound
from .base import Content, Outcome, Result, Target, Transport, permanent
from .http_answers import failure, unreachable

SIGNATURE_HEADER = "Notify-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300, now: float | None = None) -> bool:
    """For receivers (and our tests): a valid signature made within `tolerance_s`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookTransport(Transport):
    name = "webhook"

    def __init__(self, secret: str, timeout: float = 10.0, concurrency: int = 100, rate_per_s: float = 0.0) -> None:
        self.secret, self.timeout, self.concurrency = secret, timeout, concurrency
        self.rate_per_s = rate_per_s
        self._session: aiohttp.ClientSession | None = None

    def send_batch(self, content: Content, targets: list[Target]) -> list[Result]:
        return aio.run(aio.map_limited(targets, lambda t: self._send_one(t.content or content, t), self.concurrency))

    async def _send_one(self, content: Content, target: Target) -> Result:
        refused = await outbound.refusal(target.address)
        if refused:
            return permanent(f"webhook URL refused: {refused}")
        delivery_id = uuid.uuid4().hex
        body = json.dumps({"id": delivery_id, "recipient_id": target.recipient_id, "title": content.title,
                           "body": content.body, "data": content.data}).encode()
        headers = {"Content-Type": "application/json", "Notify-Delivery": delivery_id,
                   SIGNATURE_HEADER: sign(self.secret, int(time.time()), body)}
        if self._session is None:
            self._session = outbound.session(self.timeout)
        try:
            async with self._session.post(target.address, data=body, headers=headers, allow_redirects=False) as answer:
                if 200 <= answer.status < 300:
                    return Result(Outcome.SENT, provider_id=delivery_id)
                words = (await answer.text())[:200]
                return failure(answer.status, words or answer.reason or "", answer.headers.get("Retry-After"),
                               invalid_address=answer.status == 410)
        except outbound.Refused as exc:
            return permanent(f"webhook URL refused: {exc}")
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return unreachable(self.name, exc)

    def close(self) -> None:
        if self._session is not None:
            aio.run(self._session.close())
            self._session = None
