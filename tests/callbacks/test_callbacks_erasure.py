"""Erasure reaches the callback messages (apps/callbacks/erasure.py): a delivery.failed message built by the real
create_for from recorded failures lists two recipients; after one is erased over the API, their entry keeps its
id and counts but no longer names or quotes them, the other's entry is untouched, and the answer says so."""

from __future__ import annotations

import json
import uuid

import pytest
from django.utils import timezone

from apps.audience.models import Recipient
from apps.callbacks.messages import create_for
from apps.callbacks.models import CallbackEndpoint, CallbackMessage, EventType
from apps.delivery import records
from apps.delivery.models import ApiKey, ApiScope, DeliveryStatus, Erasure, Notification, NotificationStatus
from apps.providers.standard_webhooks import new_secret
from tests.preferences.test_preferences import record_only

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_erased_recipient_leaves_the_callback_messages_that_listed_them(client):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    token = f"cb-erase-{uuid.uuid4().hex}"
    key = ApiKey.objects.create(name=f"cb-erase-{token[-6:]}", token_sha256=ApiKey.hash(token),
                                scopes=list(ApiScope.values))
    hook = CallbackEndpoint.objects.create(api_key=key, url="https://hooks.example.com/notify", secret=new_secret(),
                                           event_types=[EventType.DELIVERY_FAILED])
    tag = uuid.uuid4().hex[:8]
    erin, olaf = (Recipient.objects.create(external_id=f"{name}-{tag}", email=f"{name}-{tag}@example.com")
                  for name in ("erin", "olaf"))
    notification = record_only("security", erin, "email")
    outcomes = records.Outcomes()
    for recipient in (erin, olaf):
        outcomes.add(recipient.pk, DeliveryStatus.FAILED, f"550 no such user {recipient.email}")
    records.write(notification.pk, "email", outcomes)
    Notification.objects.filter(pk=notification.pk).update(api_key=key, status=NotificationStatus.COMPLETED,
                                                           completed_at=timezone.now())
    for _ in create_for(notification.pk):
        pass
    failed = CallbackMessage.objects.get(endpoint=hook, event_type=EventType.DELIVERY_FAILED)
    assert erin.external_id in failed.payload and erin.email in failed.payload

    answer = client.delete(f"/api/recipients/{erin.external_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200, answer.content
    assert answer.json()["scrubbed_elsewhere"] == {"callback message (scrubbed)": 1}
    failed.refresh_from_db()
    entries = {entry["recipient_id"]: entry for entry in json.loads(failed.payload)["data"]["recipients"]}
    assert entries[erin.pk] | {"attempts": 0} == {"recipient_id": erin.pk, "external_id": "", "channel": "email",
                                                  "reason": "", "attempts": 0}
    assert entries[olaf.pk]["external_id"] == olaf.external_id and olaf.email in entries[olaf.pk]["reason"]
    assert erin.external_id not in failed.payload and erin.email not in failed.payload
    assert Erasure.objects.get(recipient_id=erin.pk).removed["callback message (scrubbed)"] == 1
    # Erasing someone no message lists changes no message.
    nora = Recipient.objects.create(external_id=f"nora-{tag}", email=f"nora-{tag}@example.com")
    before = failed.payload
    answer = client.delete(f"/api/recipients/{nora.external_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200 and answer.json()["scrubbed_elsewhere"] == {}
    failed.refresh_from_db()
    assert failed.payload == before
