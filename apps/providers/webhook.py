"""Webhooks: a JSON POST to the recipient's URL, signed in the Standard Webhooks format with that
endpoint's own secret (Recipient.webhook_secret), so one leaked secret exposes one endpoint.

Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (see standard_webhooks.py); receivers
verify them with the `standardwebhooks` library. The body is `{"type": "notification.message",
"timestamp": ..., "data": {"recipient_id", "title", "body", "data"}}`. A 2xx answer is delivery;
410 Gone means the endpoint is withdrawn.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import aiohttp

from . import aio, outbound
from .base import Content, Outcome, Result, Target, Transport, permanent
from .http_answers import failure, unreachable
from .standard_webhooks import signed_headers

EVENT_TYPE = "notification.message"


def message_body(content: Content, target: Target) -> bytes:
    return json.dumps({"type": EVENT_TYPE, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                       "data": {"recipient_id": target.recipient_id, "title": content.title, "body": content.body,
                                "data": content.data}}).encode()


class WebhookTransport(Transport):
    name = "webhook"

    def __init__(self, timeout: float = 10.0, concurrency: int = 100, rate_per_s: float = 0.0) -> None:
        self.timeout, self.concurrency = timeout, concurrency
        self.rate_per_s = rate_per_s
        self._session: aiohttp.ClientSession | None = None

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return aio.run(aio.map_limited(targets, lambda t: self._send_one(t.content or content, t), self.concurrency))

    async def _send_one(self, content: Content, target: Target) -> Result:
        refused = await outbound.refusal(target.address)
        if refused:
            return permanent(f"webhook URL refused: {refused}")
        if not target.secret:
            return permanent("webhook endpoint has no signing secret (set its URL again to make one)")
        message_id = f"msg_{uuid.uuid4().hex}"
        body = message_body(content, target)
        if self._session is None:
            self._session = outbound.session(self.timeout)
        try:
            async with self._session.post(target.address, data=body, allow_redirects=False,
                                          headers=signed_headers(target.secret, message_id, body)) as answer:
                if 200 <= answer.status < 300:
                    return Result(Outcome.SENT, provider_id=message_id)
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
