"""Client for the fake push provider (see fake_server.py): JSON over HTTP, 500 tokens a request.

Wire format: POST /v1/push {"title", "body", "tokens": [...]}
answer 200 {"batch": "<id>", "failed": {"<index>": "<reason>"}}; token i's message id is "<batch>-<i>".
"""

from __future__ import annotations

import json
import logging

import urllib3

from .base import (
    Content,
    Outcome,
    Result,
    Target,
    Transport,
    TransportError,
    retry_after_seconds,
    send_per_content,
    sent_results,
)

log = logging.getLogger(__name__)

INVALID_TOKEN_ERRORS = {"InvalidToken", "Unregistered"}
PERMANENT_ERRORS = INVALID_TOKEN_ERRORS | {"InvalidArgument"}


class FakePushTransport(Transport):
    name = "fake-push"
    calls_in_flight = 8  # urllib3's pool is thread-safe

    def __init__(self, base_url: str, timeout: float = 10.0, rate_per_s: float = 0.0) -> None:
        self.rate_per_s = rate_per_s
        self.url = base_url.rstrip("/") + "/v1/push"
        self.pool = urllib3.PoolManager(maxsize=self.calls_in_flight, retries=False,
                                        timeout=urllib3.Timeout(total=timeout))

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return send_per_content(content, targets, self._send_group)

    def _send_group(self, content: Content, targets: list[Target]) -> list[Result]:
        body = json.dumps({"title": content.title, "body": content.body, "tokens": [t.address for t in targets]})
        try:
            response = self.pool.request("POST", self.url, body=body, headers={"Content-Type": "application/json"})
        except urllib3.exceptions.TimeoutError:
            raise TransportError("timeout") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"fake provider unreachable: {type(exc).__name__}") from None
        if response.status == 429 or response.status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise TransportError(f"HTTP {response.status}", retry_after=retry_after)
        if response.status != 200:
            raise TransportError(f"HTTP {response.status}: {response.data[:200].decode(errors='replace')}",
                                 permanent=True)
        try:
            answer = json.loads(response.data)
            batch, failed = answer["batch"], answer.get("failed", {})
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("fake provider: unexpected answer body (HTTP %s)", response.status)
            raise TransportError(f"unexpected answer body (HTTP {response.status})") from None
        results = sent_results([f"{batch}-{i}" for i in range(len(targets))])
        for index, reason in failed.items():
            outcome = Outcome.PERMANENT if reason in PERMANENT_ERRORS else Outcome.TRANSIENT
            results[int(index)] = Result(outcome, error=reason, invalid_address=reason in INVALID_TOKEN_ERRORS)
        return results

    def close(self) -> None:
        self.pool.clear()
