"""Recipients, devices and topics over the API: upsert with contact points validated (E.164 phones, emails,
IANA timezones), token registration that moves a token and never doubles it (racing requests too), an
unregistered or provider-invalidated token no longer sent to, follows, and GDPR erasure."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from apps.audience.models import Device, Follow, Recipient, Topic
from apps.delivery.contacts import deactivate_tokens
from apps.delivery.models import ApiKey, ApiScope, Delivery, DeliveryStatus, Erasure, Notification
from apps.inbox.models import InboxMessage
from apps.preferences.models import Category, Preference
from tests.delivery.test_pipeline import completed

TOKEN = "recipients-api-token"


@pytest.fixture
def call(client, transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    ApiKey.objects.get_or_create(name="recipients-api", defaults={"token_sha256": ApiKey.hash(TOKEN),
                                                                  "scopes": list(ApiScope.values)})
    return lambda *args, **kwargs: request(client, *args, **kwargs)


def request(client: Client, method: str, path: str, body: object = None, raw: bytes | None = None,
            content_type: str = "application/json"):  # noqa: ANN201
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return getattr(client, method)(f"/api{path}", data=data, content_type=content_type,
                                   HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def new_id() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


def test_upsert_creates_then_updates_only_the_fields_given(call):
    external_id = new_id()
    created = call("put", f"/recipients/{external_id}", {"name": "Ada", "email": "ada@example.com",
                                                         "phone": "+44 7911 123456", "timezone": "Europe/London",
                                                         "locale": "en-GB"})
    assert created.status_code == 201, created.content
    assert created.json()["phone"] == "+447911123456"
    updated = call("put", f"/recipients/{external_id}", {"name": "Ada L."})
    assert updated.status_code == 200
    row = Recipient.objects.get(external_id=external_id)
    assert (row.name, row.email, row.phone, row.timezone, row.locale) == (
        "Ada L.", "ada@example.com", "+447911123456", "Europe/London", "en-GB")
    assert call("get", f"/recipients/{external_id}").json() == updated.json()
    assert call("put", f"/recipients/{external_id}", {"phone": ""}).json()["phone"] == ""


@pytest.mark.parametrize("body, field, words", [
    ({"phone": "07700 900123"}, "phone", "international form"),
    ({"phone": "+44 7700 900123"}, "phone", "not a valid phone number"),
    ({"phone": "+1 555 0100 ext"}, "phone", "phone number"),
    ({"email": "not-an-email"}, "email", "email"),
    ({"timezone": "Mars/Olympus"}, "timezone", "Unknown timezone"),
    ({"locale": "english please"}, "locale", "pattern"),
    ({"name": 7}, "name", "string"),
    ({"is_active": "yes"}, "is_active", "boolean"),
    ({"colour": "red"}, "colour", "Extra inputs"),
    ({"webhook_url": "http://example.com/hook"}, "webhook_url", "https"),
    ([1, 2], "body", "object"),
])
def test_bad_recipient_fields_are_refused_naming_the_field(call, body, field, words):
    external_id = new_id()
    answer = call("put", f"/recipients/{external_id}", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == field, answer.json()
    assert words.lower() in answer.json()["error"].lower(), answer.json()
    assert not Recipient.objects.filter(external_id=external_id).exists()


def test_body_limits_content_type_and_bad_paths(call, settings):
    answer = call("put", f"/recipients/{new_id()}", {"name": "x" * (settings.API_MAX_BODY_BYTES + 1)})
    assert answer.status_code == 413 and answer.json()["field"] == "body"
    answer = call("put", f"/recipients/{new_id()}", raw=b"name=Ada", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415 and answer.json()["field"] == "Content-Type"
    answer = call("put", f"/recipients/{new_id()}", raw=b'{"name": "\\u0000"}')
    assert answer.status_code == 400 and answer.json()["field"] == "name" and "NUL" in answer.json()["error"]
    answer = call("put", f"/recipients/{'x' * 65}", {"name": "Ada"})
    assert answer.status_code == 400 and answer.json()["field"] == "external_id"
    assert call("get", "/recipients/a%00b").status_code == 404
    answer = call("get", f"/recipients/{new_id()}")
    assert answer.status_code == 404 and answer.json()["field"] == "external_id"


def _race(count: int, work) -> list:  # noqa: ANN001
    barrier, results, errors = threading.Barrier(count), [], []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results.append(work(Client(), index))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_racing_upserts_of_one_recipient_make_one_row(call):
    external_id = new_id()
    answers = _race(6, lambda client, i: request(client, "put", f"/recipients/{external_id}", {"name": f"n{i}"}))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.content for a in answers]
    assert Recipient.objects.filter(external_id=external_id).count() == 1


def _recipient(call) -> Recipient:  # noqa: ANN001
    external_id = new_id()
    assert call("put", f"/recipients/{external_id}", {"name": "x"}).status_code == 201
    return Recipient.objects.get(external_id=external_id)


def test_a_token_registered_again_moves_and_is_never_doubled(call):
    ada, bob = _recipient(call), _recipient(call)
    token = f"fcm-{uuid.uuid4()}"
    first = call("put", f"/recipients/{ada.external_id}/devices", {"platform": "fcm", "token": token, "app": "a.b"})
    assert first.status_code == 201 and first.json()["outcome"] == "created", first.content
    again = call("put", f"/recipients/{ada.external_id}/devices", {"platform": "fcm", "token": token, "app": "a.b"})
    assert again.status_code == 200 and again.json()["outcome"] == "updated"
    moved = call("put", f"/recipients/{bob.external_id}/devices", {"platform": "fcm", "token": token, "app": "a.c"})
    assert moved.status_code == 200 and moved.json()["outcome"] == "moved"
    device = Device.objects.get(token=token)
    assert (device.recipient_id, device.app, Device.objects.filter(token=token).count()) == (bob.pk, "a.c", 1)
    assert call("get", f"/recipients/{ada.external_id}/devices").json() == {"devices": []}
    assert [d["token"] for d in call("get", f"/recipients/{bob.external_id}/devices").json()["devices"]] == [token]


def test_racing_registrations_of_one_token_leave_one_row(call):
    owners = [_recipient(call) for _ in range(6)]
    token = f"apns-{uuid.uuid4().hex}"
    answers = _race(6, lambda client, i: request(client, "put", f"/recipients/{owners[i].external_id}/devices",
                                                 {"platform": "apns", "token": token}))
    assert all(a.status_code in (200, 201) for a in answers), [a.content for a in answers]
    assert Device.objects.filter(token=token).count() == 1
    assert Device.objects.get(token=token).recipient_id in {o.pk for o in owners}


@pytest.mark.parametrize("body, field", [
    ({"platform": "blackberry", "token": "t"}, "platform"),
    ({"platform": "fcm", "token": ""}, "token"),
    ({"platform": "fcm", "token": "x" * 513}, "token"),
    ({"platform": "fcm"}, "token"),
    ({"platform": "fcm", "token": "t", "colour": 1}, "colour"),
])
def test_bad_device_registrations_name_the_field(call, body, field):
    ada = _recipient(call)
    answer = call("put", f"/recipients/{ada.external_id}/devices", body)
    assert answer.status_code == 400 and answer.json()["field"] == field, answer.content
    assert not ada.devices.exists()


def test_unknown_recipient_or_token_is_404(call):
    answer = call("put", f"/recipients/{new_id()}/devices", {"platform": "fcm", "token": "t"})
    assert answer.status_code == 404 and answer.json()["field"] == "external_id"
    ada = _recipient(call)
    answer = call("post", f"/recipients/{ada.external_id}/devices/unregister", {"token": "nobody's"})
    assert answer.status_code == 404 and answer.json()["field"] == "token"


def _send_to(call, recipient: Recipient) -> Notification:  # noqa: ANN001
    answer = call("post", "/notifications", {"category": "goal-alerts", "channels": ["push"], "title": "GOAL",
                                             "audience": {"recipients": [recipient.pk]}})
    assert answer.status_code == 202, answer.content
    return completed(answer.json()["id"])


def test_unregistered_and_invalidated_tokens_are_no_longer_sent_to(call, stack, provider):
    from apps.harness.fake_server import Faults

    ada = _recipient(call)
    keep, drop = (f"fake:{ada.pk:010d}:{name}" for name in ("keep", "drop"))
    for token in (keep, drop):
        call("put", f"/recipients/{ada.external_id}/devices", {"platform": "fake", "token": token})
    answer = call("post", f"/recipients/{ada.external_id}/devices/unregister", {"token": drop})
    assert answer.status_code == 200 and answer.json()["is_active"] is False, answer.content
    assert _send_to(call, ada).sent == 1 and provider.stats()["received"] == 1

    provider.reset(Faults(fail_invalid=1.0))  # the provider now calls every token invalid
    _send_to(call, ada)
    assert Device.objects.get(token=keep).is_active is False
    provider.reset()
    assert _send_to(call, ada).sent == 0 and provider.stats()["received"] == 0

    again = call("put", f"/recipients/{ada.external_id}/devices", {"platform": "fake", "token": keep})
    assert again.json()["is_active"] is True
    assert _send_to(call, ada).sent == 1 and provider.stats()["received"] == 1


def test_deactivated_by_the_sender_then_listed_with_its_reason(call):
    ada = _recipient(call)
    call("put", f"/recipients/{ada.external_id}/devices", {"platform": "fcm", "token": "gone-token"})
    deactivate_tokens(["gone-token"], "provider: invalid token")
    [device] = call("get", f"/recipients/{ada.external_id}/devices").json()["devices"]
    assert device["is_active"] is False and device["deactivated_reason"] == "provider: invalid token"


def test_follow_and_unfollow_topics(call):
    ada = _recipient(call)
    topic = Topic.objects.create(slug=f"team-{uuid.uuid4().hex[:6]}", name="Team")
    path = f"/recipients/{ada.external_id}/topics/{topic.slug}"
    assert call("put", path).json() == {"topic": topic.slug, "following": True, "changed": True}
    assert call("put", path).json()["changed"] is False
    assert call("get", f"/recipients/{ada.external_id}/topics").json() == {"topics": [topic.slug]}
    assert Follow.objects.filter(recipient=ada, topic=topic).count() == 1
    assert call("delete", path).json() == {"topic": topic.slug, "following": False, "changed": True}
    assert call("delete", path).json()["changed"] is False
    answer = call("put", f"/recipients/{ada.external_id}/topics/no-such-topic")
    assert answer.status_code == 404 and answer.json()["field"] == "slug"


def test_erasure_removes_contact_points_and_anonymises_deliveries(call, caplog):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    external_id = new_id()
    call("put", f"/recipients/{external_id}", {"name": "Erin", "email": email, "phone": "+447911123456"})
    erin = Recipient.objects.get(external_id=external_id)
    call("put", f"/recipients/{external_id}/devices", {"platform": "fcm", "token": f"erin-{uuid.uuid4()}"})
    topic = Topic.objects.create(slug=f"erased-{uuid.uuid4().hex[:6]}", name="T")
    call("put", f"/recipients/{external_id}/topics/{topic.slug}")
    Preference.objects.create(recipient=erin, category=Category.objects.get(slug="goal-alerts"), channel="push",
                              enabled=False)
    InboxMessage.objects.create(recipient=erin, title="hi", body="there")
    notification = Notification.objects.create(category=Category.objects.get(slug="goal-alerts"), channels=["push"],
                                               audience={"recipients": [erin.pk]}, title="t", source="api")
    Delivery.objects.create(id=Delivery.key(notification.pk, "push", erin.pk), notification=notification,
                            recipient_id=erin.pk, channel="push", status=DeliveryStatus.FAILED,
                            reason=f"mailbox {email} full", provider_message_id="prov-123", updated_at=timezone.now())

    with caplog.at_level(logging.DEBUG):
        answer = call("delete", f"/recipients/{external_id}")
    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert report["erased"] is True and report["deliveries_anonymised"] == 1
    assert report["removed"] == {"device": 1, "follow": 1, "preference": 1, "inboxmessage": 1}, report
    assert not Recipient.objects.filter(pk=erin.pk).exists()
    assert not Device.objects.filter(recipient_id=erin.pk).exists()
    row = Delivery.objects.get(recipient_id=erin.pk)
    assert (row.reason, row.provider_message_id, row.status) == ("", "", DeliveryStatus.FAILED)
    audit = Erasure.objects.get(recipient_id=erin.pk)
    assert audit.external_id_sha256 == hashlib.sha256(external_id.encode()).hexdigest()
    assert audit.requested_by == "api key recipients-api" and audit.deliveries_anonymised == 1
    assert email not in caplog.text and external_id not in caplog.text and "+447911123456" not in caplog.text
    assert f"recipient {erin.pk} erased" in caplog.text
    assert call("get", f"/recipients/{external_id}").status_code == 404
    assert call("delete", f"/recipients/{external_id}").status_code == 404


def test_an_unreachable_database_is_a_503_to_retry_not_a_500(call):
    from django.db import connection

    from apps.streaming.local_broker import free_port

    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = free_port()  # nothing listens there: PostgreSQL is "down"
    try:
        answer = call("get", f"/recipients/{new_id()}")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert answer.status_code == 503, answer.content
    assert "PostgreSQL is unavailable" in answer.json()["error"] and answer["Retry-After"] == "1"
    assert call("get", f"/recipients/{new_id()}").status_code == 404  # and back once it is
