"""Each provider adapter, through its real client library, against a local server speaking its protocol."""

from __future__ import annotations

import base64
import json
import logging
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.test import override_settings

from apps.harness import protocol_servers as servers
from apps.providers import registry
from apps.providers.base import Content, NotConfigured, Outcome, Target

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # pytest-django swaps in locmem otherwise
CONTENT = Content(title="GOAL!", body="Number 9 scores", data={"match": "42"})


@pytest.fixture(autouse=True)
def fresh_transports():
    registry.reset()
    yield
    registry.reset()


def send(channel: str, addresses: list[str], platform: str = "", content: Content = CONTENT) -> dict:
    transport = registry.transport_for(channel, platform)
    targets = [Target(index + 1, address, platform) for index, address in enumerate(addresses)]
    results = transport.send(content, targets)
    assert len(results) == len(targets)
    return dict(zip(addresses, results, strict=True))


def pem(key, private: bool = True) -> str:  # noqa: ANN001
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# --- FCM ---

@pytest.fixture(scope="module")
def fcm(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    received = servers.Received()
    thread, base = servers.serve_aiohttp(servers.fcm_app(pem(key, private=False), received))
    credentials = tmp_path_factory.mktemp("fcm") / "service-account.json"
    credentials.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-project", "private_key_id": "k1", "private_key": pem(key),
        "client_email": "sender@demo-project.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"{base}/token"}))
    with override_settings(FCM_CREDENTIALS_FILE=str(credentials), FCM_ENDPOINT=base):
        yield received
    thread.stop()


def test_fcm_sends_through_oauth_and_maps_every_answer(fcm):
    results = send("push", ["tok-1", "bad-1", "malformed-1", "busy-1", "quota-1", "garbled-1"], "fcm")
    assert results["tok-1"].outcome is Outcome.SENT
    assert results["tok-1"].provider_id.startswith("projects/demo-project/messages/")
    assert results["bad-1"].outcome is Outcome.PERMANENT and results["bad-1"].invalid_address
    assert "UNREGISTERED" in results["bad-1"].error
    malformed = results["malformed-1"]
    assert malformed.outcome is Outcome.PERMANENT and not malformed.invalid_address
    assert "Invalid value at 'message.data'" in malformed.error  # the provider's own words
    assert results["busy-1"].outcome is Outcome.TRANSIENT and results["busy-1"].retry_after == 7
    assert results["quota-1"].outcome is Outcome.TRANSIENT and results["quota-1"].error.startswith("HTTP 429")
    assert results["garbled-1"].outcome is Outcome.TRANSIENT
    assert results["garbled-1"].error == "unexpected answer body (HTTP 200)"
    sent = next(m for m in fcm.requests if m["token"] == "tok-1")
    assert sent["notification"] == {"title": "GOAL!", "body": "Number 9 scores"} and sent["data"] == {"match": "42"}


def test_a_batch_of_500_goes_out_concurrently(fcm):
    results = send("push", [f"tok-{i}" for i in range(500)], "fcm")
    assert all(r.outcome is Outcome.SENT for r in results.values())
    assert len({r.provider_id for r in results.values()}) == 500


# --- APNs ---

@pytest.fixture(scope="module")
def apns(tmp_path_factory):
    directory = tmp_path_factory.mktemp("apns")
    key = ec.generate_private_key(ec.SECP256R1())
    (directory / "AuthKey.p8").write_text(pem(key))
    cert, cert_key = servers.self_signed_cert(directory)
    received = servers.Received()
    app = servers.apns_asgi_app(pem(key, private=False), "KEY1234567", "TEAM123456", "com.example.app", received)
    thread, base = servers.serve_http2_tls(app, cert, cert_key)
    with override_settings(APNS_KEY_FILE=str(directory / "AuthKey.p8"), APNS_KEY_ID="KEY1234567",
                           APNS_TEAM_ID="TEAM123456", APNS_TOPIC="com.example.app", APNS_ENDPOINT=base,
                           APNS_CA_FILE=cert):
        yield received
    thread.stop()


def test_apns_over_http2_with_a_provider_token(apns, caplog):
    caplog.set_level(logging.INFO)
    results = send("push", ["aa01", "bad01", "gone01", "busy01", "malformed01"], "apns")
    assert "aa01" not in caplog.text  # the device token is in the URL: httpx must not log it
    assert results["aa01"].outcome is Outcome.SENT and results["aa01"].provider_id.startswith("00000000-")
    assert results["bad01"].outcome is Outcome.PERMANENT and results["bad01"].invalid_address
    assert results["gone01"].outcome is Outcome.PERMANENT and "Unregistered" in results["gone01"].error
    assert results["busy01"].outcome is Outcome.TRANSIENT and results["busy01"].error.startswith("HTTP 429")
    assert results["malformed01"].outcome is Outcome.PERMANENT and not results["malformed01"].invalid_address
    assert "PayloadTooLarge" in results["malformed01"].error
    request = next(r for r in apns.requests if r["token"] == "aa01")
    assert request["http_version"] == "2"
    assert request["payload"]["aps"]["alert"] == {"title": "GOAL!", "body": "Number 9 scores"}


# --- Web Push ---

@pytest.fixture(scope="module")
def webpush(tmp_path_factory):
    import http_ece
    from py_vapid import Vapid

    browser_keys, received = {}, servers.Received()

    def decrypt(name: str, body: bytes) -> dict:
        private_key, auth = browser_keys[name]
        return json.loads(http_ece.decrypt(body, private_key=private_key, auth_secret=auth, version="aes128gcm"))

    thread, base = servers.serve_aiohttp(servers.webpush_app(received, decrypt))
    vapid = Vapid()
    vapid.generate_keys()
    vapid_file = tmp_path_factory.mktemp("vapid") / "vapid.pem"
    vapid.save_key(str(vapid_file))

    def subscription(name: str) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        browser_keys[name] = (key, auth)
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
        return json.dumps({"endpoint": f"{base}/push/{name}", "keys": {"p256dh": b64(point), "auth": b64(auth)}})

    with override_settings(WEBPUSH_VAPID_PRIVATE_KEY=str(vapid_file), WEBPUSH_VAPID_SUBJECT="mailto:ops@example.com"):
        yield received, subscription
    thread.stop()


def test_web_push_encrypts_for_the_browser_and_signs_with_vapid(webpush):
    received, subscription = webpush
    addresses = [subscription("ok1"), subscription("gone1"), subscription("busy1"), subscription("bad1"),
                 "not json", json.dumps({"endpoint": "x"})]
    results = send("push", addresses, "webpush")
    outcomes = [results[a] for a in addresses]
    assert outcomes[0].outcome is Outcome.SENT and outcomes[0].provider_id.startswith("/messages/ok1")
    assert outcomes[1].outcome is Outcome.PERMANENT and outcomes[1].invalid_address
    assert outcomes[2].outcome is Outcome.TRANSIENT and outcomes[2].retry_after == 30
    assert outcomes[3].outcome is Outcome.PERMANENT and "Payload too large" in outcomes[3].error
    assert outcomes[4].invalid_address and outcomes[5].invalid_address
    request = received.requests[0]
    assert request["payload"]["title"] == "GOAL!" and request["encoding"] == "aes128gcm"
    assert request["claims"]["sub"] == "mailto:ops@example.com" and request["claims"]["aud"].startswith("http://127")


# --- Email over SMTP ---

@pytest.fixture(scope="module")
def smtp():
    from aiosmtpd.controller import Controller

    handler = servers.SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=servers.free_port())
    controller.start()
    with override_settings(EMAIL_BACKEND=SMTP_BACKEND, EMAIL_HOST="127.0.0.1", EMAIL_PORT=controller.port,
                           DEFAULT_FROM_EMAIL="alerts@club.example"):
        yield handler
    controller.stop()


def test_email_over_one_smtp_connection_with_per_recipient_answers(smtp):
    content = Content(title="GOAL!", body="Number 9 scores", html="<p>Number 9 scores</p>",
                      unsubscribe_url=lambda recipient_id: f"https://n.example/u/{recipient_id}/signed")
    results = send("email", ["fan@club.example", "nobody@club.example", "greylisted@club.example",
                             "fan2@club.example"], content=content)
    assert results["fan@club.example"].outcome is Outcome.SENT
    assert results["nobody@club.example"].outcome is Outcome.PERMANENT
    assert results["nobody@club.example"].error.startswith("SMTP 550")
    assert results["nobody@club.example"].invalid_address
    assert results["greylisted@club.example"].outcome is Outcome.TRANSIENT
    assert results["fan2@club.example"].outcome is Outcome.SENT
    mail = next(m for m in smtp.messages if m["To"] == "fan@club.example")
    assert mail["Subject"] == "GOAL!" and mail["From"] == "alerts@club.example"
    assert mail["List-Unsubscribe"] == "<https://n.example/u/1/signed>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.get_body(("html",)).get_content().strip()  # and a visible unsubscribe footer (rendering.py)
    assert html.startswith("<p>Number 9 scores</p>") and 'href="https://n.example/u/1/signed"' in html


def test_email_server_down_is_transient_for_the_whole_batch():
    with override_settings(EMAIL_BACKEND=SMTP_BACKEND, EMAIL_HOST="127.0.0.1", EMAIL_PORT=servers.free_port()):
        results = send("email", ["a@x.example", "b@x.example"])
    assert {r.outcome for r in results.values()} == {Outcome.TRANSIENT}


# --- SMS through Twilio ---

@pytest.fixture(scope="module")
def twilio():
    sid, token = "AC" + "0" * 32, "secret-token"
    received = servers.Received()
    thread, base = servers.serve_aiohttp(servers.twilio_app(sid, token, received))
    with override_settings(TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token, TWILIO_FROM_NUMBER="+15005550006",
                           TWILIO_API_BASE=base):
        yield received
    thread.stop()


def test_twilio_sms_answers(twilio):
    results = send("sms", ["+447700900001", "+1500555bad1", "+1500555quota", "+1500555busy"])
    assert results["+447700900001"].outcome is Outcome.SENT and results["+447700900001"].provider_id.startswith("SM")
    assert results["+1500555bad1"].outcome is Outcome.PERMANENT and results["+1500555bad1"].invalid_address
    assert "21211" in results["+1500555bad1"].error
    assert results["+1500555quota"].outcome is Outcome.TRANSIENT and results["+1500555quota"].error.startswith(
        "HTTP 429")
    assert results["+1500555busy"].outcome is Outcome.TRANSIENT
    sent = next(r for r in twilio.requests if r["To"] == "+447700900001")
    # StatusCallback: where Twilio reports delivered/undelivered/failed (apps/receipts)
    assert sent == {"To": "+447700900001", "From": "+15005550006", "Body": "GOAL!: Number 9 scores",
                    "StatusCallback": f"{settings.PUBLIC_BASE_URL}/receipts/twilio/status"}


# --- Not configured ---

@override_settings(TWILIO_ACCOUNT_SID="", FCM_CREDENTIALS_FILE="", EMAIL_HOST="",
                   EMAIL_BACKEND=SMTP_BACKEND)
@pytest.mark.parametrize("channel, platform, setting", [
    ("sms", "", "TWILIO_ACCOUNT_SID"),
    ("push", "fcm", "FCM_CREDENTIALS_FILE"), ("email", "", "EMAIL_HOST"), ("carrier-pigeon", "", "no provider"),
])
def test_a_channel_without_credentials_says_so(channel, platform, setting):
    with pytest.raises(NotConfigured, match=setting):
        registry.transport_for(channel, platform)

