"""Webhook and Web Push requests go only to https URLs on public addresses (no SSRF), and a webhook URL
is refused before it is stored."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError

from apps.audience.models import Recipient
from apps.providers import outbound
from apps.providers.base import Content, Outcome, Target
from apps.providers.standard_webhooks import new_secret
from apps.providers.webhook import WebhookTransport
from apps.providers.webpush import WebPushTransport

CONTENT = Content(title="GOAL!", body="Number 9 scores")
# Names our patched resolver answers with internal addresses, as an attacker's DNS would.
NAMES = {"loop.attacker.example": "127.0.0.1", "intranet.attacker.example": "10.0.0.1",
         "metadata.attacker.example": "169.254.169.254", "hooks.public.example": "93.184.216.34"}
REFUSED = ["https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
           "https://[::ffff:127.0.0.1]/hook", "https://[::1]/hook", "https://localhost/hook",
           "https://loop.attacker.example/hook", "https://intranet.attacker.example/hook",
           "https://metadata.attacker.example/latest/meta-data", "http://hooks.public.example/hook"]


@pytest.fixture(autouse=True)
def attacker_dns(monkeypatch, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []  # what production has
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if host in NAMES:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (NAMES[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_and_plain_http_are_refused(url):
    assert asyncio.run(outbound.refusal(url))
    assert outbound.check_stored_url(url)


def test_a_public_https_url_passes():
    assert asyncio.run(outbound.refusal("https://hooks.public.example/hook")) is None


def test_webhooks_to_internal_addresses_are_refused_before_any_request():
    transport = WebhookTransport(timeout=2)
    try:
        results = transport.send(CONTENT, [Target(i + 1, url, secret=new_secret())
                                                  for i, url in enumerate(REFUSED)])
    finally:
        transport.close()
    for url, result in zip(REFUSED, results, strict=True):
        assert result.outcome is Outcome.PERMANENT and "webhook URL refused" in result.error, (url, result)


def test_web_push_endpoints_on_internal_addresses_are_refused(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "vapid.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    transport = WebPushTransport(str(pem), "mailto:ops@example.com", timeout=2)
    subscriptions = [json.dumps({"endpoint": url, "keys": {"p256dh": "x", "auth": "y"}}) for url in REFUSED]
    try:
        results = transport.send(CONTENT, [Target(i + 1, s, "webpush") for i, s in enumerate(subscriptions)])
    finally:
        transport.close()
    for url, result in zip(REFUSED, results, strict=True):
        assert result.outcome is Outcome.PERMANENT and "push endpoint refused" in result.error, (url, result)


def test_the_resolver_refuses_a_name_that_turns_internal_at_connection_time():
    """DNS rebinding: the check saw a public address, the connection's own lookup sees another."""

    async def resolve() -> None:
        resolver = outbound.GuardedResolver()
        try:
            await resolver.resolve("metadata.attacker.example", 443)
        finally:
            await resolver.close()

    with pytest.raises(OSError, match="non-public address"):
        asyncio.run(resolve())


def test_an_allowed_host_may_use_http_and_a_local_address(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    assert asyncio.run(outbound.refusal("http://127.0.0.1:8910/hook")) is None
    assert asyncio.run(outbound.refusal("http://10.0.0.1/hook"))


@pytest.mark.parametrize("url", ["https://10.0.0.1/hook", "http://hooks.public.example/hook",
                                 "https://metadata.attacker.example/x"])
def test_a_recipient_cannot_store_an_internal_webhook_url(db, client, url):
    from apps.delivery.models import ApiKey, ApiScope

    with pytest.raises(ValidationError) as refused:
        Recipient(external_id="w", webhook_url=url).full_clean()
    assert "webhook_url" in refused.value.message_dict
    token = f"w-{uuid.uuid4().hex}"
    ApiKey.objects.create(name=token, token_sha256=ApiKey.hash(token), scopes=[ApiScope.MANAGE_RECIPIENTS])
    answer = client.put("/api/recipients/w-1", data=json.dumps({"webhook_url": url}),
                        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 400 and answer.json()["field"] == "webhook_url", answer.content
    assert not Recipient.objects.filter(external_id="w-1").exists()
    ok = client.put("/api/recipients/w-1", data=json.dumps({"webhook_url": "https://hooks.public.example/h"}),
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 201 and ok.json()["webhook_url"] == "https://hooks.public.example/h"


@pytest.mark.django_db
def test_a_webhook_endpoint_gets_its_own_secret_and_the_sender_loads_it():
    from standardwebhooks.webhooks import Webhook

    from apps.audience.models import Recipient
    from apps.delivery.contacts import load_targets

    first = Recipient.objects.create(external_id="hook-a", webhook_url="http://127.0.0.1:9/a")
    second = Recipient.objects.create(external_id="hook-b", webhook_url="http://127.0.0.1:9/b")
    plain = Recipient.objects.create(external_id="hook-none")
    assert first.webhook_secret.startswith("whsec_") and first.webhook_secret != second.webhook_secret
    assert plain.webhook_secret == ""
    Webhook(first.webhook_secret)  # a secret the library reads
    kept = first.webhook_secret
    first.webhook_url = "http://127.0.0.1:9/a2"
    first.save(update_fields=["webhook_url"])
    first.refresh_from_db()
    assert first.webhook_secret == kept  # a moved endpoint keeps its secret
    targets = {t.recipient_id: t for t in load_targets("webhook", [first.pk, second.pk, plain.pk])}
    assert set(targets) == {first.pk, second.pk}
    assert targets[second.pk].secret == second.webhook_secret and targets[second.pk].address.endswith("/b")
