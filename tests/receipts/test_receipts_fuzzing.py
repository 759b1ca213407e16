"""The receipt endpoints take any bytes: refused (4xx) or taken (2xx), never a 500, whether the request is
unauthenticated, authenticated with garbage inside, or a correctly signed Twilio form of arbitrary fields."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from apps.receipts.email_webhooks import ESP_VIEWS

SECRET = "fuzz-user:fuzz-password"
TOKEN = "fuzz-twilio-token"
BASIC = "Basic " + base64.b64encode(SECRET.encode()).decode()
ANYMAIL_PATHS = [f"/receipts/anymail/{esp}/tracking/" for esp in ESP_VIEWS]
TWILIO_PATHS = ["/receipts/twilio/status", "/receipts/twilio/inbound"]
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xx",
                 "text/plain", "multipart/form-data"]
pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=5), max_leaves=20)
# Keys the parsers look for, so the fuzz reaches past the first KeyError.
KEYS = ["RecordType", "MessageID", "Type", "Email", "Recipient", "event", "smtp-id", "email", "timestamp", "type",
        "signature", "event-data", "message", "headers", "message-id", "severity", "Message", "MessageId",
        "notificationType", "eventType", "mail", "bounce", "messageId", "destination", "bounceType"]
esp_bodies = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner | json_values, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30)
TWILIO_FIELDS = ["MessageSid", "SmsSid", "MessageStatus", "ErrorCode", "To", "From", "Body", "AccountSid"]
twilio_forms = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(min_size=1, max_size=10),
                               st.sampled_from(["delivered", "undelivered", "failed", "sent", "21610", "30005", "STOP",
                                                "START"]) | st.text(max_size=40), max_size=8)


@pytest.fixture(autouse=True)
def configured():
    with override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": "fuzz-key"},
                           TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_BASE_URL="http://testserver"):
        yield


@given(body=st.binary(max_size=3000), content_type=st.sampled_from(CONTENT_TYPES), authenticated=st.booleans(),
       sns_type=st.sampled_from([None, "Notification", "SubscriptionConfirmation", "Other"]))
def test_any_bytes_to_any_receipt_endpoint_is_never_a_500(client, body, content_type, authenticated, sns_type):
    headers = {"HTTP_AUTHORIZATION": BASIC} if authenticated else {}
    if sns_type:
        headers |= {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": sns_type, "HTTP_X_AMZ_SNS_MESSAGE_ID": "m"}
    for path in ANYMAIL_PATHS + TWILIO_PATHS:
        extra = {"HTTP_X_TWILIO_SIGNATURE": "c2lnbmF0dXJl"} if authenticated and "twilio" in path else {}
        answer = client.generic("POST", path, body, content_type=content_type, **headers, **extra)
        assert 200 <= answer.status_code < 500, (path, answer.status_code)


@given(body=esp_bodies)
def test_authenticated_esp_posts_of_any_json_shape_are_never_a_500(client, body):
    for path in ANYMAIL_PATHS:
        headers = {"HTTP_AUTHORIZATION": BASIC}
        if "amazon_ses" in path and isinstance(body, dict):  # past SNS's header checks, into the SES parser
            body = {**body, "Type": "Notification", "MessageId": "m", "Message": json.dumps(body.get("Message"))}
            headers |= {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "m"}
        answer = client.post(path, json.dumps(body), content_type="application/json", **headers)
        assert 200 <= answer.status_code < 500, (path, answer.status_code, body)


@given(form=twilio_forms)
def test_correctly_signed_twilio_forms_of_any_fields_are_never_a_500(client, form):
    for path in TWILIO_PATHS:
        signature = RequestValidator(TOKEN).compute_signature(f"http://testserver{path}", form)
        answer = client.post(path, urlencode(form), content_type="application/x-www-form-urlencoded",
                             HTTP_X_TWILIO_SIGNATURE=signature)  # as Twilio posts
        assert answer.status_code in (200, 204), (path, answer.status_code, form)
