import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from apps.audience.models import Device, Follow, Recipient, Segment, Topic
from apps.delivery.models import CHANNEL_CODES, Delivery, Notification
from apps.preferences.defaults import ensure_default_categories
from apps.preferences.models import Category, Preference

pytestmark = pytest.mark.django_db


def test_recipient_external_id_is_unique():
    Recipient.objects.create(external_id="u1")
    with pytest.raises(IntegrityError):
        Recipient.objects.create(external_id="u1")


def test_unknown_timezone_is_rejected_and_empty_means_utc():
    recipient = Recipient(external_id="u2", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="Unknown timezone"):
        recipient.full_clean()
    Recipient(external_id="u3", timezone="").full_clean()
    Recipient(external_id="u4", timezone="Europe/London").full_clean()


def test_device_token_is_unique():
    recipient = Recipient.objects.create(external_id="u5")
    Device.objects.create(recipient=recipient, platform="fcm", token="tok")
    with pytest.raises(IntegrityError):
        Device.objects.create(recipient=recipient, platform="fcm", token="tok")


def test_follow_is_unique_per_topic_and_recipient():
    recipient = Recipient.objects.create(external_id="u6")
    topic = Topic.objects.create(slug="arsenal", name="Arsenal")
    Follow.objects.create(topic=topic, recipient=recipient)
    with pytest.raises(IntegrityError):
        Follow.objects.create(topic=topic, recipient=recipient)


def test_preference_is_unique_per_recipient_category_channel():
    categories = ensure_default_categories()
    recipient = Recipient.objects.create(external_id="u7")
    Preference.objects.create(recipient=recipient, category=categories["promotions"], channel="email", enabled=False)
    Preference.objects.create(recipient=recipient, category=categories["promotions"], channel="push", enabled=False)
    with pytest.raises(IntegrityError):
        Preference.objects.create(recipient=recipient, category=categories["promotions"], channel="email",
                                  enabled=True)


def test_transactional_category_cannot_default_off():
    category = Category(slug="otp", name="OTP", kind="transactional", default_enabled=False)
    with pytest.raises(ValidationError, match="always on"):
        category.full_clean()


def test_notification_idempotency_key_is_unique():
    category = ensure_default_categories()["security"]
    Notification.objects.create(category=category, channels=["push"], audience={"all": True}, idempotency_key="k")
    with pytest.raises(IntegrityError):
        Notification.objects.create(category=category, channels=["push"], audience={"all": True},
                                    idempotency_key="k")


def test_delivery_key_packs_notification_channel_recipient_without_collisions():
    keys = {Delivery.key(n, c, r) for n in (1, 2, 2**26) for c in CHANNEL_CODES for r in (1, 2**31, 2**32 - 1)}
    assert len(keys) == 3 * len(CHANNEL_CODES) * 3
    low, high = Delivery.key_range(7)
    assert all(low <= Delivery.key(7, c, r) <= high for c in CHANNEL_CODES for r in (1, 2**32 - 1))
    assert not low <= Delivery.key(8, "push", 1) <= high


def test_segment_rejects_unknown_filters_and_filters_recipients():
    Recipient.objects.create(external_id="es1", locale="es")
    Recipient.objects.create(external_id="en1", locale="en")
    with pytest.raises(ValidationError, match="Unknown filter"):
        Segment(name="bad", filters={"shoe_size": 9}).full_clean()
    segment = Segment.objects.create(name="spanish", filters={"locale": "es"})
    assert list(segment.recipients().values_list("external_id", flat=True)) == ["es1"]
