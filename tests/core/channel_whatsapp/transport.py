"""WhatsApp Cloud API-shaped transport: one POST /v20.0/<phone number id>/messages per recipient, a Bearer token;
a 400 with code 131026 (not a WhatsApp user) is permanent for that number, 429 and 5xx are transient."""

from __future__ import annotations

import httpx
from django.conf import settings

from apps.providers.base import Content, Outcome, Result, Target, Transport, permanent, transient

UNDELIVERABLE = 131026


class WhatsAppTransport(Transport):
    name = "whatsapp"

    def __init__(self, api_base: str, token: str) -> None:
        self.client = httpx.Client(base_url=api_base, headers={"Authorization": f"Bearer {token}"}, timeout=5.0)

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return [self._send(target.content or content, target) for target in targets]

    def _send(self, content: Content, target: Target) -> Result:
        try:
            answer = self.client.post("/v20.0/test-phone-id/messages", json={
                "messaging_product": "whatsapp", "to": target.address, "type": "text", "text": {"body": content.body}})
        except httpx.HTTPError as exc:
            return transient(f"unreachable: {type(exc).__name__}")
        if answer.status_code == 200:
            return Result(Outcome.SENT, provider_id=answer.json()["messages"][0]["id"])
        code = (answer.json().get("error") or {}).get("code") if answer.content else None
        if answer.status_code == 400 and code == UNDELIVERABLE:
            return permanent(f"WhatsApp {code}: not a WhatsApp user", invalid_address=True)
        return transient(f"WhatsApp HTTP {answer.status_code}")

    def close(self) -> None:
        self.client.close()


def build() -> WhatsAppTransport:
    return WhatsAppTransport(settings.WHATSAPP_API_BASE, settings.WHATSAPP_TOKEN)
