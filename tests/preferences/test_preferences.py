"""End-user preferences: the API, the signed page, RFC 8058 one-click unsubscribe, and quiet hours across DST."""

import time
import uuid
from datetime import UTC, datetime
from datetime import time as wall
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from django.core import signing

from apps.audience.models import Recipient
from apps.delivery.models import ApiKey, ApiScope, DeliveryStatus
from apps.delivery.service import notify
from apps.preferences import links
from apps.preferences.models import Preference, QuietHours
from apps.preferences.quiet_hours import quiet_until
from tests.delivery.test_pipeline import completed

SERVICE_TOKEN = "preferences-service-token"


@pytest.fixture
def user(transactional_db, client):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    ApiKey.objects.get_or_create(name="preference-tests", defaults={"token_sha256": ApiKey.hash(SERVICE_TOKEN),
                                                                    "scopes": list(ApiScope.values)})
    recipient = Recipient.objects.create(external_id=f"user-{uuid.uuid4().hex[:8]}", email="fan@club.example")
    answer = client.post(f"/api/recipients/{recipient.external_id}/token", HTTP_AUTHORIZATION=f"Bearer {SERVICE_TOKEN}")
    return recipient, {"HTTP_AUTHORIZATION": f"Bearer {answer.json()['token']}"}


def patch(client, auth, body):
    import json

    return client.patch("/api/me/preferences", data=json.dumps(body), content_type="application/json", **auth)


def test_preference_api_reads_defaults_and_changes_one_channel(client, user):
    recipient, auth = user
    state = client.get("/api/me/preferences", **auth).json()
    promotions = next(c for c in state["categories"] if c["category"] == "promotions")
    assert promotions["channels"]["email"] is True and state["timezone"] == "UTC" and state["quiet_hours"] is None
    answer = patch(client, auth, {"preferences": {"promotions": {"email": False}}, "timezone": "Europe/London",
                                  "quiet_hours": {"start": "22:00", "end": "07:00"}})
    assert answer.status_code == 200, answer.content
    promotions = next(c for c in answer.json()["categories"] if c["category"] == "promotions")
    assert promotions["channels"] == {"push": True, "email": False, "sms": True, "in_app": True, "webhook": True}
    assert answer.json()["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    recipient.refresh_from_db()
    assert recipient.timezone == "Europe/London"
    assert Preference.objects.get(recipient=recipient, category__slug="promotions", channel="email").enabled is False


@pytest.mark.parametrize("body, field", [
    ({"preferences": {"nope": {"push": False}}}, "preferences.nope"),
    ({"preferences": {"promotions": {"fax": False}}}, "preferences.promotions.fax"),
    ({"preferences": {"promotions": {"push": "off"}}}, "preferences.promotions.push"),
    ({"preferences": {"security": {"sms": False}}}, "preferences.security.sms"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
    ({"colour": "red"}, "colour"),
])
def test_bad_preference_updates_are_400_naming_the_field_and_change_nothing(client, user, body, field):
    recipient, auth = user
    # a valid change rides along, and must not be applied either
    choices = {"promotions": {"push": False}, **body.get("preferences", {})}
    answer = patch(client, auth, {**body, "preferences": choices})
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert not Preference.objects.filter(recipient=recipient).exists()


def test_transactional_category_may_be_turned_off_only_where_allowed(client, user):
    recipient, auth = user
    assert patch(client, auth, {"preferences": {"security": {"push": False}}}).status_code == 200
    answer = patch(client, auth, {"preferences": {"security": {"email": False}}})
    assert answer.status_code == 400 and "cannot be turned off" in answer.json()["error"]


def test_preference_api_needs_the_users_token(client, user):
    assert client.get("/api/me/preferences").status_code == 401
    assert client.get("/api/me/preferences", HTTP_AUTHORIZATION="Bearer forged").status_code == 401


def test_signed_preference_page_saves_and_rejects_a_bad_timezone(client, user):
    recipient, _ = user
    path = urlparse(links.preference_page_url(recipient.pk)).path
    page = client.get(path)
    assert page.status_code == 200 and b"Promotions" in page.content
    client.post(path, {"on": ["goal-alerts:push"], "timezone": "Asia/Tokyo", "quiet_start": "23:00",
                       "quiet_end": "06:30"})
    recipient.refresh_from_db()
    assert recipient.timezone == "Asia/Tokyo"
    assert Preference.objects.get(recipient=recipient, category__slug="promotions", channel="push").enabled is False
    assert Preference.objects.get(recipient=recipient, category__slug="goal-alerts", channel="push").enabled is True
    assert QuietHours.objects.get(recipient=recipient).end == wall(6, 30)
    bad = client.post(path, {"timezone": "Nowhere/Special"})
    assert bad.status_code == 400 and b"Unknown timezone" in bad.content
    assert client.get(path[:-3] + "xyz").status_code == 400


def test_admin_rejects_an_unknown_timezone(admin_client, user):
    recipient, _ = user
    answer = admin_client.post(f"/admin/audience/recipient/{recipient.pk}/change/",
                               {"external_id": recipient.external_id, "timezone": "Atlantis/Lost", "locale": "en"})
    assert answer.status_code == 200 and b"Unknown timezone" in answer.content


# --- RFC 8058 one-click unsubscribe ---


def record_only(category: str, recipient: Recipient, channel: str):  # noqa: ANN201
    """A recorded notification whose event is not published, so only this test's code handles it."""
    from apps.delivery.models import Source
    from apps.delivery.requests import parse_request
    from apps.delivery.service import record

    request = parse_request({"category": category, "audience": {"recipients": [recipient.pk]}, "channels": [channel],
                             "title": "Big sale", "body": "50% off"})
    return record(request, Source.PYTHON)[0]


def send_email_now(recipient: Recipient, category: str) -> None:
    """One email through the real sender (in this process), to read what the mail server received."""
    from apps.delivery.sender import send_batch

    notification = record_only(category, recipient, "email")
    report = send_batch(notification.pk, "email", f"email:test:{uuid.uuid4().hex}", [recipient.pk],
                        priority=notification.category.priority)
    assert report.counts == {"sent": 1}


def test_marketing_email_carries_one_click_unsubscribe_that_works(client, user, smtp, broker):
    recipient, _ = user
    send_email_now(recipient, "promotions")
    mail = smtp.messages[-1]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = mail["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("http") and "/unsubscribe/" in url
    path = urlparse(url).path
    # A GET (a link scanner) only shows a confirmation; the one-click POST unsubscribes.
    assert client.get(path).status_code == 200
    assert not Preference.objects.filter(recipient=recipient).exists()
    answer = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200 and b"You are unsubscribed" in answer.content
    off = set(Preference.objects.filter(recipient=recipient, category__slug="promotions", enabled=False)
              .values_list("channel", flat=True))
    assert off == {"push", "email", "sms", "in_app", "webhook"}
    # and the next promotion is skipped as opted out
    again = record_only("promotions", recipient, "email")
    from apps.delivery.tasks import dispatch_notification

    dispatch_notification(again.pk)
    from apps.delivery.models import Delivery

    row = Delivery.objects.get(id=Delivery.key(again.pk, "email", recipient.pk))
    assert (row.status, row.reason) == (DeliveryStatus.SKIPPED, "opted_out")


def test_transactional_email_has_no_unsubscribe_header(user, smtp, broker):
    recipient, _ = user
    send_email_now(recipient, "security")
    assert smtp.messages[-1]["List-Unsubscribe"] is None


def test_tampered_and_expired_unsubscribe_links_get_a_clear_4xx_page(client, user, monkeypatch):
    recipient, _ = user
    path = urlparse(links.unsubscribe_url(recipient.pk, "promotions")).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = signing.dumps({"r": recipient.pk + 1, "c": "promotions"}, salt=links.UNSUBSCRIBE_SALT, key="guess")
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged):
        answer = client.post(f"/unsubscribe/{bad}", data="List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
        assert answer.status_code == 400 and b"not valid" in answer.content
    issued = time.time() - 61 * 86400  # links last 60 days
    monkeypatch.setattr(signing.time, "time", lambda: issued)
    old = urlparse(links.unsubscribe_url(recipient.pk, "promotions")).path
    monkeypatch.undo()
    answer = client.post(old, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 410 and b"expired" in answer.content
    assert not Preference.objects.filter(recipient=recipient).exists()


# --- Quiet hours in the user's own timezone, across DST ---

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("now, zone, expected", [
    # 22:00-07:00 London. Winter: 07:00 local is 07:00 UTC; summer: 06:00 UTC.
    (utc(2026, 1, 15, 23, 0), LONDON, utc(2026, 1, 16, 7, 0)),
    (utc(2026, 7, 15, 23, 0), LONDON, utc(2026, 7, 16, 6, 0)),
    # Night of the spring change (29 March 2026, 01:00 UTC clocks go forward): the window opened at
    # 22:00 GMT and ends at 07:00 BST = 06:00 UTC, 8 hours of real time.
    (utc(2026, 3, 28, 23, 30), LONDON, utc(2026, 3, 29, 6, 0)),
    # Night of the autumn change (25 October 2026): opened 22:00 BST = 21:00 UTC, ends 07:00 GMT = 07:00 UTC.
    (utc(2026, 10, 24, 21, 30), LONDON, utc(2026, 10, 25, 7, 0)),
    (utc(2026, 10, 24, 20, 30), LONDON, None),  # 21:30 BST: not yet quiet
    (utc(2026, 10, 25, 7, 0), LONDON, None),  # the moment it ends
    # New York, spring change 8 March 2026: 07:00 EDT = 11:00 UTC.
    (utc(2026, 3, 8, 5, 0), NEW_YORK, utc(2026, 3, 8, 11, 0)),
    (utc(2026, 3, 7, 5, 0), NEW_YORK, utc(2026, 3, 7, 12, 0)),
])
def test_quiet_hours_end_in_the_users_zone_across_dst(now, zone, expected):
    assert quiet_until(now, zone, wall(22, 0), wall(7, 0)) == expected


def test_quiet_hours_edges_inside_a_dst_gap_and_overlap():
    # A window ending at 01:30 London on the spring-forward day: 01:30 does not exist and counts as 02:30 BST.
    assert quiet_until(utc(2026, 3, 29, 0, 45), LONDON, wall(0, 0), wall(1, 30)) == utc(2026, 3, 29, 1, 30)
    # Ending at 01:30 on the fall-back day: the first 01:30 (BST, 00:30 UTC).
    assert quiet_until(utc(2026, 10, 25, 0, 10), LONDON, wall(0, 0), wall(1, 30)) == utc(2026, 10, 25, 0, 30)
    # A daytime window that does not cross midnight.
    assert quiet_until(utc(2026, 6, 1, 12, 0), ZoneInfo("UTC"), wall(9, 0), wall(17, 0)) == utc(2026, 6, 1, 17, 0)
    assert quiet_until(utc(2026, 6, 1, 18, 0), ZoneInfo("UTC"), wall(9, 0), wall(17, 0)) is None


def test_opt_out_per_channel_through_the_pipeline(stack, provider, client, user):
    """Opted out of push for goal alerts but not of in-app: push is skipped, in-app is delivered."""
    from apps.audience.models import Device

    recipient, auth = user
    Device.objects.create(recipient=recipient, platform="fake", token=f"fake:{uuid.uuid4().hex}")
    assert patch(client, auth, {"preferences": {"goal-alerts": {"push": False}}}).status_code == 200
    notification = notify(category="goal-alerts", audience={"recipients": [recipient.pk]}, channels=["push", "in_app"],
                          title="GOAL", idempotency_key=f"pc-{uuid.uuid4()}")
    done = completed(notification.pk)
    assert (done.sent, done.skipped) == (1, 1)
    from apps.delivery.models import Delivery

    push = Delivery.objects.get(id=Delivery.key(notification.pk, "push", recipient.pk))
    assert (push.status, push.reason) == (DeliveryStatus.SKIPPED, "opted_out")
    assert provider.stats()["received"] == 0
