import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from apps.audience.models import Device, Follow, Recipient, Topic
from apps.harness.seeding import seed_audience
from apps.preferences.models import Preference

pytestmark = pytest.mark.django_db


def test_seed_counts_and_rerun_creates_nothing():
    result = seed_audience(2000, "arsenal")
    assert result.recipients_created == 2000
    assert Recipient.objects.filter(external_id__startswith="seed-").count() == 2000
    assert Device.objects.count() == 2000
    assert Follow.objects.filter(topic__slug="arsenal").count() == 2000
    assert 0 < Recipient.objects.filter(is_active=False).count() < 100
    assert 0 < Preference.objects.filter(category__slug="goal-alerts", channel="push", enabled=False).count() < 200
    again = seed_audience(2000, "arsenal")
    assert (again.recipients_created, again.follows_created) == (0, 0)
    assert Recipient.objects.count() == 2000
    other = seed_audience(2500, "chelsea")  # 500 new users, and the first 2000 also follow chelsea
    assert other.recipients_created == 500
    assert Follow.objects.filter(topic__slug="chelsea").count() == 2500


@pytest.mark.parametrize("argv, message", [
    (["--users", "0"], "at least 1"),
    (["--users", "many"], "whole number"),
    (["--users", "5", "--topic", "  "], "must not be empty"),
])
def test_seed_command_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises((CommandError, SystemExit)) as info:
        call_command("seed_audience", *argv)
    if isinstance(info.value, SystemExit):
        assert info.value.code != 0
        assert message in capsys.readouterr().err
    else:
        assert message in str(info.value)


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.test", "pw")
    client.force_login(user)
    return client


def test_every_admin_changelist_and_change_form_renders_with_real_data(staff_client):
    from django.contrib import admin

    from apps.campaigns.models import Campaign
    from apps.content.models import Template
    from apps.delivery.models import ApiKey, DeadLetter, Delivery, Notification
    from apps.preferences.models import Category

    seed_audience(50, "arsenal")
    recipient = Recipient.objects.first()
    category = Category.objects.get(slug="goal-alerts")
    template = Template.objects.create(name="goal", push_title="GOAL", push_body="{{ scorer }}")
    Campaign.objects.create(name="c", category=category, template=template, channels=["push"],
                            topic=Topic.objects.get(slug="arsenal"))
    notification = Notification.objects.create(category=category, channels=["push"], audience={"topic": "arsenal"})
    from django.utils import timezone

    Delivery.objects.create(id=Delivery.key(notification.pk, "push", recipient.pk), notification=notification,
                            recipient=recipient, channel="push", status=1, updated_at=timezone.now())
    DeadLetter.objects.create(topic="notify.events", reason="not JSON")
    ApiKey.objects.create(name="svc", token_sha256="0" * 64)
    from apps.delivery.models import Erasure, EventSource

    EventSource.objects.create(name="auth-service")
    Erasure.objects.create(recipient_id=999_999, external_id_sha256="0" * 64, requested_by="api key svc")
    from apps.audience.models import Segment

    Segment.objects.create(name="spanish", filters={"locale": "es"})
    from apps.preferences.models import QuietHours

    QuietHours.objects.create(recipient=recipient, start="22:00", end="07:00")
    for model in admin.site._registry:
        if model._meta.app_label not in {"audience", "preferences", "campaigns", "delivery"}:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        response = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert response.status_code == 200, info
        obj = model.objects.first()
        assert obj is not None, info
        response = staff_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        assert response.status_code == 200, info


def test_recipient_admin_on_100k_rows_uses_raw_ids_and_searches(staff_client, django_assert_max_num_queries):
    seed_audience(100_000, "big")
    response = staff_client.get(reverse("admin:audience_recipient_changelist"))
    assert response.status_code == 200
    response = staff_client.get(reverse("admin:audience_recipient_changelist"), {"q": "seed-000012345"})
    assert b"seed-000012345" in response.content
    device = Device.objects.first()
    response = staff_client.get(reverse("admin:audience_device_change", args=[device.pk]))
    assert response.status_code == 200
    # the recipient foreign key is a raw-id input, never a 100k-option dropdown
    assert b'class="vForeignKeyRawIdAdminField"' in response.content
    assert response.content.count(b"<option") < 50
