"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), via pywebpush.

A device's token is its browser subscription as JSON: {"endpoint": ..., "keys": {"p256dh", "auth"}}.
The endpoint is the browser vendor's push service, so there is no endpoint setting: the subscription
names it. pywebpush's async API shares one aiohttp session across the batch.
"""

from __future__ import annotations

import json

import aiohttp
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from . import aio, outbound
from .base import Content, Outcome, Result, Target, Transport, TransportError, permanent
from .http_answers import failure, log_unexpected, unreachable


class WebPushTransport(Transport):
    name = "webpush"

    def __init__(self, vapid_private_key: str, subject: str, ttl: int = 86400, timeout: float = 10.0,
                 concurrency: int = 100, rate_per_s: float = 0.0) -> None:
        try:
            self.vapid = Vapid.from_file(vapid_private_key) if vapid_private_key.endswith(".pem") \
                else Vapid.from_string(vapid_private_key)
        except Exception as exc:  # py_vapid raises plain Exceptions for a bad key
            raise TransportError(f"VAPID private key unusable: {type(exc).__name__}", permanent=True) from None
        self.subject, self.ttl, self.timeout = subject, ttl, timeout
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self._session: aiohttp.ClientSession | None = None

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return log_unexpected(self.name, aio.run(aio.map_limited(
            targets, lambda t: self._send_one(t.address, _payload(t.content or content)), self.concurrency)))

    async def _send_one(self, subscription_json: str, data: str) -> Result:
        try:
            subscription = json.loads(subscription_json)
            if not isinstance(subscription.get("endpoint"), str) or not isinstance(subscription.get("keys"), dict):
                raise ValueError
        except (ValueError, AttributeError):
            return permanent("invalid subscription: expected JSON with endpoint and keys", invalid_address=True)
        refused = await outbound.refusal(subscription["endpoint"])
        if refused:
            return permanent(f"push endpoint refused: {refused}", invalid_address=True)
        if self._session is None:
            self._session = outbound.session(self.timeout)
        try:
            answer = await webpush_async(subscription, data, vapid_private_key=self.vapid,
                                         vapid_claims={"sub": self.subject}, ttl=self.ttl,
                                         aiohttp_session=self._session)
        except WebPushException as exc:
            if exc.response is None:
                return permanent(f"rejected before sending: {exc.message}"[:300])
            status = exc.response.status
            words = (await exc.response.text())[:200] or exc.response.reason or ""
            # 404 and 410: the subscription has expired or was withdrawn by the user.
            return failure(status, words, exc.response.headers.get("Retry-After"), invalid_address=status in (404, 410))
        except outbound.Refused as exc:
            return permanent(f"push endpoint refused: {exc}", invalid_address=True)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return unreachable(self.name, exc)
        except (ValueError, TypeError) as exc:  # keys that do not decode
            return permanent(f"invalid subscription keys: {type(exc).__name__}", invalid_address=True)
        return Result(Outcome.SENT, provider_id=answer.headers.get("Location", ""))

    def close(self) -> None:
        if self._session is not None:
            aio.run(self._session.close())
            self._session = None


def _payload(content: Content) -> str:
    return json.dumps({"title": content.title, "body": content.body, "data": content.data})
