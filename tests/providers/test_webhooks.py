"""The webhook channel against a local receiver that verifies with the standardwebhooks library: one signing
secret per endpoint, answers mapped to outcomes, tampering and replays refused."""

from __future__ import annotations

import time

import pytest

from apps.harness import protocol_servers as servers
from apps.providers import registry
from apps.providers.base import Outcome, Target
from apps.providers.standard_webhooks import new_secret, signed_headers
from tests.providers.test_providers import CONTENT, fresh_transports  # noqa: F401 (fresh_transports: a fixture)

HOOK_SECRETS = {name: new_secret() for name in ("ok", "gone", "fail", "forged")}


@pytest.fixture(scope="module")
def webhooks():
    received = servers.Received()
    thread, base = servers.serve_aiohttp(servers.webhook_app(HOOK_SECRETS, received))
    yield received, base
    thread.stop()


def test_webhooks_are_signed_per_endpoint_and_answers_mapped(webhooks):
    """Each endpoint's requests verify with its own secret (the receiver uses the standardwebhooks
    library); one signed with another endpoint's secret is refused."""
    received, base = webhooks
    transport = registry.transport_for("webhook", "")
    urls = [f"{base}/hook/{name}" for name in ("ok", "gone", "fail", "forged")]
    targets = [Target(index + 1, url, secret=HOOK_SECRETS[name])
               for index, (url, name) in enumerate(zip(urls, ("ok", "gone", "fail", "ok"), strict=True))]
    targets.append(Target(5, f"http://127.0.0.1:{servers.free_port()}/nothing", secret=new_secret()))
    targets.append(Target(6, f"{base}/hook/ok"))  # no secret: never sent unsigned
    ok, gone, fail, forged, nothing, unsigned = transport.send(CONTENT, targets)
    assert ok.outcome is Outcome.SENT and ok.provider_id.startswith("msg_")
    assert gone.outcome is Outcome.PERMANENT and gone.invalid_address
    assert fail.outcome is Outcome.TRANSIENT
    assert forged.outcome is Outcome.PERMANENT and "401" in forged.error
    assert nothing.outcome is Outcome.TRANSIENT
    assert unsigned.outcome is Outcome.PERMANENT and "no signing secret" in unsigned.error
    request = next(r for r in received.requests if r["name"] == "ok")
    assert request["id"] == ok.provider_id and request["body"]["type"] == "notification.message"
    assert request["body"]["data"]["title"] == "GOAL!" and request["body"]["data"]["recipient_id"] == 1
    assert [r["name"] for r in received.requests].count("ok") == 1  # the forged and unsigned ones never counted


def test_standard_webhook_signature_rejects_tampering_and_replays():
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret, body = new_secret(), b'{"a":1}'
    headers = signed_headers(secret, "msg_1", body)
    assert Webhook(secret).verify(body, headers) == {"a": 1}
    for bad_secret, bad_body, bad_headers in [
        (secret, b'{"a":2}', headers),
        (new_secret(), body, headers),
        (secret, body, {**headers, "webhook-id": "msg_2"}),
        (secret, body, signed_headers(secret, "msg_1", body, timestamp=time.time() - 3600)),
    ]:
        with pytest.raises(WebhookVerificationError):
            Webhook(bad_secret).verify(bad_body, bad_headers)
