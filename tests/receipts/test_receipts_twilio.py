"""Twilio's receipts over real HTTP into the live server: signed status callbacks mark the delivery (a tampered,
unsigned or forged one is refused), and a STOP reply suppresses the number until START lifts it."""

from __future__ import annotations

import pytest
import requests
from django.test import override_settings
from twilio.request_validator import RequestValidator

from apps.harness import protocol_servers as servers
from apps.providers import registry
from apps.receipts.models import DeliveryEvent, Suppression
from tests.preferences.test_preferences import record_only
from tests.receipts.support import TWILIO_SID, TWILIO_TOKEN, categories, events_of, fan, send_now  # noqa: F401

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def twilio(live_server):
    received = servers.Received()
    thread, base = servers.serve_aiohttp(servers.twilio_app(TWILIO_SID, TWILIO_TOKEN, received))
    registry.reset()
    # Twilio signs the public URL it called: here, the live server's.
    with override_settings(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                           TWILIO_FROM_NUMBER="+15005550006", TWILIO_API_BASE=base, PUBLIC_BASE_URL=live_server.url):
        yield received
    registry.reset()
    thread.stop()


def post_signed(url: str, form: dict, signature: str | None = None) -> requests.Response:
    if signature is None:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return requests.post(url, data=form, headers=headers, timeout=30)


def test_a_signed_twilio_callback_marks_the_delivery_and_a_tampered_one_is_refused(twilio, live_server):
    reached, gone = fan(phone="+447700900101"), fan(phone="+447700900102")
    first, second = send_now(reached, "sms"), send_now(gone, "sms")
    url = f"{live_server.url}/receipts/twilio/status"
    sent = next(r for r in twilio.requests if r["To"] == "+447700900101")
    assert sent["StatusCallback"] == url  # the send asked Twilio for these callbacks
    delivered = {"MessageSid": first.provider_message_id, "MessageStatus": "delivered", "To": reached.phone,
                 "AccountSid": TWILIO_SID, "From": "+15005550006"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, delivered)
    # Tampered (a field changed after signing), unsigned, or signed with another token: nothing changes.
    assert post_signed(url, {**delivered, "MessageStatus": "failed"}, signature).status_code == 403
    assert post_signed(url, {**delivered, "MessageSid": second.provider_message_id}, signature).status_code == 403
    assert post_signed(url, delivered, "").status_code == 400
    forged = RequestValidator("not-the-token").compute_signature(url, delivered)
    assert post_signed(url, delivered, forged).status_code == 403
    assert not DeliveryEvent.objects.exists()
    assert post_signed(url, delivered, signature).status_code == 204
    assert set(events_of(first)) == {"delivered"}
    unknown_handset = {"MessageSid": second.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30005",
                       "To": gone.phone, "AccountSid": TWILIO_SID}
    assert post_signed(url, unknown_handset).status_code == 204
    assert events_of(second)["undelivered"].detail == "error 30005"
    [suppression] = Suppression.objects.all()
    assert (suppression.channel, suppression.address, suppression.recipient_id, suppression.reason) == (
        "sms", gone.phone, gone.pk, "invalid_address")


def test_a_stop_reply_suppresses_the_number_and_start_lifts_it(twilio, live_server):
    from apps.delivery.audience_stream import stream_audience

    texter = fan(phone="+447700900201")
    url = f"{live_server.url}/receipts/twilio/inbound"
    reply = {"From": texter.phone, "To": "+15005550006", "Body": " stop ", "MessageSid": "SM" + "9" * 32}
    assert post_signed(url, {**reply, "Body": "STOP"}, "bad-signature").status_code == 403
    assert not Suppression.objects.exists()
    answer = post_signed(url, reply)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
    [suppression] = Suppression.objects.all()
    assert (suppression.recipient_id, suppression.reason, suppression.source) == (texter.pk, "stop_reply", "twilio")
    notification = record_only("promotions", texter, "sms")
    [chunk] = stream_audience(notification, "sms")
    assert (chunk.suppressed, chunk.sendable) == ([texter.pk], [])
    assert post_signed(url, {**reply, "Body": "START"}).status_code == 200
    suppression.refresh_from_db()
    assert suppression.lifted_by == "twilio" and suppression.lift_note == "replied START"
    [chunk] = stream_audience(notification, "sms")
    assert (chunk.suppressed, chunk.sendable) == ([], [texter.pk])
