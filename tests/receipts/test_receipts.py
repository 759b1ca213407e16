"""Provider receipts over real HTTP into the live server: anymail's tracking webhooks (Postmark, SendGrid,
Mailgun, Amazon SES formats; Twilio's: test_receipts_twilio.py). A bounce after a real
SMTP send suppresses the address, and the next notification's dispatcher skips it (the SMTP server, in
this process, counts what it was sent). Refused or unknown receipts change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests
from django.test import override_settings

from apps.delivery.models import Delivery, DeliveryStatus
from apps.receipts import metrics
from apps.receipts.models import DeliveryEvent, Suppression
from tests.preferences.test_preferences import record_only
from tests.receipts.support import categories, events_of, fan, send_now  # noqa: F401 (categories: a fixture)

WEBHOOK_SECRET = "anymail-user:anymail-password"
MAILGUN_KEY = "mailgun-signing-key"
pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def anymail_secrets():
    with override_settings(ANYMAIL={"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}):
        yield



@pytest.fixture
def send_worker(broker, monkeypatch):
    """A real Celery worker (in a thread of this process, so it sends with this test's settings) on a
    low-priority send queue of its own (promotions): the dispatcher hands it the batches it did not skip. Its
    own, because the session stack's send workers (no mail server), when this test process has started them,
    serve the shared one."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from apps.core import queues
    from notifications_project.celery import app

    def close_connections(**kwargs: object) -> None:  # the worker thread's own, or the test database stays busy
        connections.close_all()

    private = f"send.low.{uuid.uuid4().hex[:8]}"
    shared_send_queue = queues.send_queue
    monkeypatch.setattr(queues, "send_queue", lambda priority: private if priority == "low" else
                        shared_send_queue(priority))
    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=30,
                          queues=[private]):
            yield
    finally:
        task_postrun.disconnect(close_connections)


def post_json(url: str, body: object, auth: tuple[str, str] | None = tuple(WEBHOOK_SECRET.split(":")),
              headers: dict | None = None) -> requests.Response:
    return requests.post(url, data=json.dumps(body), auth=auth, timeout=30,
                         headers={"Content-Type": "application/json", **(headers or {})})


def postmark(record_type: str, message_id: str, address: str, **extra: object) -> dict:
    at = "2026-12-02T03:00:00Z"
    return {"RecordType": record_type, "MessageID": message_id, "Recipient": address, "Email": address,
            "ServerID": 1, "MessageStream": "outbound", "Tag": "", "Metadata": {}, "DeliveredAt": at,
            "BouncedAt": at, "ReceivedAt": at, "ID": 42, "Details": "smtp;550 5.1.1 user unknown", **extra}


def test_a_bounce_after_a_real_smtp_send_suppresses_the_address_and_the_next_send_skips_it(
        smtp, anymail_secrets, live_server, send_worker):
    from apps.delivery.tasks import dispatch_notification

    bouncing, keeper = fan(email="bouncing@club.example"), fan(email="keeper@club.example")
    delivery = send_now(bouncing, "email")
    assert delivery.provider_message_id.startswith("<") and len(smtp.messages) == 1
    url = f"{live_server.url}/receipts/anymail/postmark/tracking/"
    for record in (postmark("Delivery", delivery.provider_message_id, "bouncing@club.example"),
                   postmark("Bounce", delivery.provider_message_id, "bouncing@club.example", Type="HardBounce",
                            TypeCode=1, Description="The server was unable to deliver your message")):
        assert post_json(url, record).status_code == 200
    assert set(events_of(delivery)) == {"delivered", "bounced"}
    [suppression] = Suppression.objects.filter(channel="email", lifted_at=None)
    assert (suppression.address, suppression.recipient_id, suppression.reason, suppression.source) == (
        "bouncing@club.example", bouncing.pk, "hard_bounce", "postmark")
    # The next notification to both: the dispatcher skips the suppressed address; the other is mailed.
    request = record_only("promotions", bouncing, "email")
    request.audience = {"recipients": [bouncing.pk, keeper.pk]}
    request.save(update_fields=["audience"])
    dispatch_notification(request.pk)
    skipped = Delivery.objects.get(id=Delivery.key(request.pk, "email", bouncing.pk))
    assert (skipped.status, skipped.reason) == (DeliveryStatus.SKIPPED, "suppressed")
    deadline = time.monotonic() + 120
    while not Delivery.objects.filter(id=Delivery.key(request.pk, "email", keeper.pk)).exists():
        assert time.monotonic() < deadline, "the keeper's batch was never sent"
        time.sleep(0.2)
    assert Delivery.objects.get(id=Delivery.key(request.pk, "email", keeper.pk)).status == DeliveryStatus.SENT
    assert [m["To"] for m in smtp.messages] == ["bouncing@club.example", "keeper@club.example"]
    # Lifting it (as the admin does) keeps the row as the audit, and the address is sendable again.
    from apps.receipts.suppressions import lift

    assert lift([suppression], by="marketer", note="fixed mailbox") == 1
    suppression.refresh_from_db()
    assert suppression.lifted_at is not None and suppression.lifted_by == "marketer"


def test_each_esp_format_maps_hard_and_soft_bounces_complaints_opens_and_clicks(anymail_secrets, live_server):
    address = "reader@club.example"
    deliveries = {}
    for esp in ("postmark", "sendgrid", "mailgun", "amazon_ses"):
        recipient = fan(email=address.replace("@", f"+{esp}@"))
        notification = record_only("promotions", recipient, "email")
        from apps.delivery import records

        outcomes = records.Outcomes()
        outcomes.add(recipient.pk, DeliveryStatus.SENT, provider_id=f"<{esp}-{uuid.uuid4().hex}@club.example>")
        records.write(notification.pk, "email", outcomes)
        deliveries[esp] = Delivery.objects.get(id=Delivery.key(notification.pk, "email", recipient.pk))
    base = f"{live_server.url}/receipts/anymail"

    pm = deliveries["postmark"]
    for record in (postmark("Bounce", pm.provider_message_id, pm.recipient.email, Type="SoftBounce"),
                   postmark("Open", pm.provider_message_id, pm.recipient.email, FirstOpen=True),
                   postmark("Click", pm.provider_message_id, pm.recipient.email, OriginalLink="https://x.example"),
                   postmark("SpamComplaint", pm.provider_message_id, pm.recipient.email, Type="SpamComplaint")):
        assert post_json(f"{base}/postmark/tracking/", record).status_code == 200
    assert set(events_of(pm)) == {"soft_bounced", "opened", "clicked", "complained"}

    sg = deliveries["sendgrid"]
    batch = [{"email": sg.recipient.email, "timestamp": 1764644400, "smtp-id": sg.provider_message_id, "event": e,
              "sg_event_id": uuid.uuid4().hex, **extra}
             for e, extra in (("delivered", {}), ("open", {}), ("bounce", {"type": "bounce", "reason": "550"}))]
    assert post_json(f"{base}/sendgrid/tracking/", batch).status_code == 200  # one request, one bulk write
    assert set(events_of(sg)) == {"delivered", "opened", "bounced"}

    mg = deliveries["mailgun"]
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {"event": "failed", "severity": "permanent", "reason": "bounce", "id": "ev1",
                           "timestamp": time.time(), "recipient": mg.recipient.email,
                           "message": {"headers": {"message-id": mg.provider_message_id.strip("<>")}},
                           "delivery-status": {"code": 550, "message": "no such user", "description": ""}}}
    assert post_json(f"{base}/mailgun/tracking/", body).status_code == 200  # basic auth and its HMAC
    forged = {**body, "signature": {**body["signature"], "signature": "0" * 64}}
    assert post_json(f"{base}/mailgun/tracking/", forged).status_code == 400
    assert set(events_of(mg)) == {"bounced"}

    ses = deliveries["amazon_ses"]
    ses_id = ses.provider_message_id.strip("<>")
    Delivery.objects.filter(pk=ses.pk).update(provider_message_id=ses_id)  # SES answers its own message id
    message = {"notificationType": "Bounce", "mail": {"messageId": ses_id, "destination": [ses.recipient.email],
                                                      "timestamp": "2026-12-02T03:00:00.000Z"},
               "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-12-02T03:00:00Z",
                          "bouncedRecipients": [{"emailAddress": ses.recipient.email, "diagnosticCode": "550"}]}}
    sns = {"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
           "Message": json.dumps(message), "Timestamp": "2026-12-02T03:00:00.000Z"}
    answer = post_json(f"{base}/amazon_ses/tracking/", sns, headers={"x-amz-sns-message-type": "Notification",
                                                                      "x-amz-sns-message-id": "sns-1"})
    assert answer.status_code == 200, answer.text
    assert set(events_of(ses)) == {"bounced"}
    reasons = dict(Suppression.objects.filter(lifted_at=None).values_list("recipient_id", "reason"))
    assert reasons == {pm.recipient_id: "complaint", sg.recipient_id: "hard_bounce", mg.recipient_id: "hard_bounce",
                       ses.recipient_id: "hard_bounce"}
    # The counts show in the notification's status (the API's) and on the campaign results panel.
    from apps.api.notifications import _status
    from apps.campaigns.results import notification_results
    from apps.delivery.models import Notification

    status = _status(Notification.objects.get(pk=sg.notification_id))  # what GET /api/notifications/{id} answers
    assert {k: v for k, v in status["receipts"].items() if v} == {"delivered": 1, "opened": 1, "bounced": 1}
    panel = notification_results(pm.notification_id, complete=True)
    assert {k: v for k, v in panel["email"]["receipts"].items() if v} == {
        "soft_bounced": 1, "opened": 1, "clicked": 1, "complained": 1}


def test_a_receipt_with_bad_auth_is_refused_and_changes_nothing(anymail_secrets, live_server):
    recipient = fan(email="held@club.example")
    from apps.delivery import records

    notification = record_only("promotions", recipient, "email")
    outcomes = records.Outcomes()
    outcomes.add(recipient.pk, DeliveryStatus.SENT, provider_id="<held@club.example>")
    records.write(notification.pk, "email", outcomes)
    bounce = postmark("Bounce", "<held@club.example>", "held@club.example", Type="HardBounce")
    url = f"{live_server.url}/receipts/anymail/postmark/tracking/"
    for auth in (None, ("anymail-user", "wrong"), ("someone", "else")):
        assert post_json(url, bounce, auth=auth).status_code == 400
    with override_settings(ANYMAIL={}):  # no secret configured: not served at all, rather than open to anyone
        assert post_json(url, bounce).status_code == 404
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_a_receipt_for_an_unknown_message_is_counted_and_ignored(anymail_secrets, live_server):
    unknown = metrics.UNKNOWN.labels("email", "postmark")
    before = unknown._value.get()
    answer = post_json(f"{live_server.url}/receipts/anymail/postmark/tracking/",
                       postmark("Bounce", f"<{uuid.uuid4().hex}@nowhere>", "x@club.example", Type="HardBounce"))
    assert answer.status_code == 200
    assert unknown._value.get() == before + 1
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_an_invalid_address_refused_at_send_time_is_suppressed(smtp):
    from apps.delivery.sender import send_batch

    nobody = fan(email="nobody@club.example")  # the SMTP server answers 550 for nobody@
    notification = record_only("promotions", nobody, "email")
    report = send_batch(notification.pk, "email", f"email:test:{uuid.uuid4().hex}", [nobody.pk])
    assert report.counts == {"failed": 1}
    [suppression] = Suppression.objects.all()
    assert (suppression.address, suppression.recipient_id, suppression.reason, suppression.source) == (
        "nobody@club.example", nobody.pk, "invalid_address", "send")


def test_erasing_a_recipient_removes_their_suppressions_and_the_words_of_their_receipts(anymail_secrets, live_server):
    from apps.delivery import records
    from apps.delivery.erasure import erase

    gone = fan(email="erased@club.example")
    notification = record_only("promotions", gone, "email")
    outcomes = records.Outcomes()
    outcomes.add(gone.pk, DeliveryStatus.SENT, provider_id="<erased@club.example>")
    records.write(notification.pk, "email", outcomes)
    bounce = postmark("Bounce", "<erased@club.example>", "erased@club.example", Type="HardBounce",
                      Description="550 erased@club.example: no such user")
    assert post_json(f"{live_server.url}/receipts/anymail/postmark/tracking/", bounce).status_code == 200
    assert Suppression.objects.filter(recipient_id=gone.pk).exists()
    erase(gone, requested_by="tests")
    assert not Suppression.objects.exists()
    [event] = DeliveryEvent.objects.all()
    assert (event.state, event.detail) == ("bounced", "")


def test_the_api_queries_the_suppression_list_by_channel_address_and_state(client):
    from apps.delivery.models import ApiKey, ApiScope
    from apps.receipts.suppressions import Entry, lift, suppress

    token = f"suppressions-{uuid.uuid4().hex}"
    ApiKey.objects.create(name=token[-12:], token_sha256=ApiKey.hash(token), scopes=[ApiScope.READ_SUPPRESSIONS])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    one, two = fan(email="one@club.example"), fan(email="two@club.example", phone="+447700900301")
    suppress("email", [Entry("one@club.example", None, "hard_bounce", "postmark"),
                       Entry("two@club.example", two.pk, "complaint", "sendgrid")])
    suppress("sms", [Entry("+447700900301", None, "stop_reply", "twilio")])
    lift(Suppression.objects.filter(address="one@club.example"), by="marketer")

    def get(query: str) -> dict:
        answer = client.get(f"/api/suppressions{query}", **auth)
        assert answer.status_code == 200, answer.content
        return answer.json()

    assert [(s["channel"], s["address"]) for s in get("")["items"]] == [("sms", "+447700900301"),
                                                                         ("email", "two@club.example")]
    [lifted] = get("?active=false")["items"]
    assert (lifted["address"], lifted["recipient_id"], lifted["lifted_by"]) == ("one@club.example", one.pk, "marketer")
    assert get("?channel=sms&address=%2B447700900301")["items"][0]["reason"] == "stop_reply"
    first = get("?limit=1")
    assert len(first["items"]) == 1 and get(f"?limit=1&before={first['next_before']}")["next_before"] is None
    assert client.get("/api/suppressions?channel=fax", **auth).status_code == 400
    assert client.get("/api/suppressions").status_code == 401
