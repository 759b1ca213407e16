import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from apps.audience.models import Device, Follow, Recipient, Segment, Topic
from apps.delivery.models import (
    CHANNEL_CODES,
    MAX_NOTIFICATION_ID,
    MAX_RECIPIENT_ID,
    Delivery,
    DeliveryStatus,
    Notification,
)
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


BOUNDARY_NOTIFICATIONS = (1, 2**27 - 1, 2**27, 2**27 + 1, 2**31 - 1, 2**31, 2**31 + 1, MAX_NOTIFICATION_ID)


def test_delivery_key_packs_notification_channel_recipient_without_collisions():
    recipients = (1, 2**27, MAX_RECIPIENT_ID)
    keys = {Delivery.key(n, c, r) for n in BOUNDARY_NOTIFICATIONS for c in CHANNEL_CODES for r in recipients}
    assert len(keys) == len(BOUNDARY_NOTIFICATIONS) * len(CHANNEL_CODES) * len(recipients)
    assert all(0 < key < 2**63 for key in keys)  # a bigint, never negative
    for n in BOUNDARY_NOTIFICATIONS:
        low, high = Delivery.key_range(n)
        assert all(low <= Delivery.key(n, c, r) <= high for c in CHANNEL_CODES for r in recipients)
        assert not low <= Delivery.key(n + 1, "push", 1) <= high if n < MAX_NOTIFICATION_ID else True


@pytest.mark.parametrize("notification_id, recipient_id", [(0, 1), (MAX_NOTIFICATION_ID + 1, 1), (2**40, 1),
                                                           (1, 0), (1, MAX_RECIPIENT_ID + 1), (1, 2**32)])
def test_an_id_the_delivery_key_cannot_hold_is_refused_never_wrapped(notification_id, recipient_id):
    with pytest.raises(ValueError, match="outside the delivery key"):
        Delivery.key(notification_id, "push", recipient_id)


@pytest.mark.django_db
def test_deliveries_of_notifications_either_side_of_2_27_and_2_31_are_separate_rows():
    """The old layout wrapped notification 2**27 onto notification 0's keys, where ON CONFLICT DO NOTHING
    dropped its rows without a word."""
    from apps.delivery import records

    for n in BOUNDARY_NOTIFICATIONS:
        outcomes = records.Outcomes()
        for recipient_id in (1, 2, MAX_RECIPIENT_ID):
            outcomes.add(recipient_id, DeliveryStatus.SENT)
        assert records.write(n, "push", outcomes)["sent"] == 3
    for n in BOUNDARY_NOTIFICATIONS:
        assert records.count_by_status(n)["sent"] == 3
        assert set(Delivery.of_notification(n).values_list("notification_id", flat=True)) == {n}
    assert Delivery.objects.count() == 3 * len(BOUNDARY_NOTIFICATIONS)


def test_segment_rejects_unknown_filters_and_filters_recipients():
    Recipient.objects.create(external_id="es1", locale="es")
    Recipient.objects.create(external_id="en1", locale="en")
    with pytest.raises(ValidationError, match="Unknown filter"):
        Segment(name="bad", filters={"shoe_size": 9}).full_clean()
    segment = Segment.objects.create(name="spanish", filters={"locale": "es"})
    assert list(segment.recipients().values_list("external_id", flat=True)) == ["es1"]
