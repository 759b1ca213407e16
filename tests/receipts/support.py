"""What the receipt tests share: default categories, a recipient, one message sent through the real sender."""

from __future__ import annotations

import uuid

import pytest

from apps.audience.models import Recipient
from apps.delivery.models import Delivery
from apps.receipts.models import DeliveryEvent
from tests.preferences.test_preferences import record_only

TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "twilio-auth-token"


@pytest.fixture(autouse=True)
def categories(transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()


def fan(email: str = "", phone: str = "") -> Recipient:
    return Recipient.objects.create(external_id=f"r-{uuid.uuid4().hex[:10]}", email=email, phone=phone)


def send_now(recipient: Recipient, channel: str, category: str = "promotions") -> Delivery:
    """One message through the real sender and adapter (in this process); its delivery row."""
    from apps.delivery.sender import send_batch

    notification = record_only(category, recipient, channel)
    report = send_batch(notification.pk, channel, f"{channel}:test:{uuid.uuid4().hex}", [recipient.pk],
                        priority=notification.category.priority)
    assert report.counts == {"sent": 1}, report
    return Delivery.objects.get(id=Delivery.key(notification.pk, channel, recipient.pk))


def events_of(delivery: Delivery) -> dict[str, DeliveryEvent]:
    return {event.state: event for event in DeliveryEvent.objects.filter(delivery_id=delivery.pk)}
