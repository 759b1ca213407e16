"""Status callbacks, seen from the calling service: a real notification through the whole pipeline reports
exactly one notification.completed with its counts (and its failures, batched) to the receiver of
tests/callbacks/test_callbacks.py; endpoints are registered over the API (SSRF rules, scope); the delivery log is
read-only in the admin and never shows a secret."""

from __future__ import annotations

import json
import uuid

import pytest
from standardwebhooks.webhooks import Webhook

from apps.callbacks.models import CallbackAttempt, CallbackMessage, MessageStatus
from apps.core import queues
from apps.delivery.models import ApiScope, Notification
from apps.harness.fake_server import Faults
from tests.callbacks.test_callbacks import (  # noqa: F401  (fixtures)
    api_key,
    endpoint,
    fast_callbacks,
    message,
    receiver,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_completed_notification_reports_once_with_its_counts(fast_callbacks, receiver, stack, provider, fans,  # noqa: F811
                                                                client):
    """Through the real pipeline: the API key's notification completes; its endpoint gets exactly one
    notification.completed with the counts PostgreSQL records, and a second endpoint that asked for
    failures gets them batched, 100 recipients a request."""
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    provider.reset(Faults(fail_invalid=0.1))
    key, token = api_key()
    plain = endpoint(key, receiver, f"done-{uuid.uuid4().hex[:8]}")
    detailed = endpoint(key, receiver, f"failures-{uuid.uuid4().hex[:8]}", event_types=["delivery.failed"])
    other_key, _ = api_key()
    stranger = endpoint(other_key, receiver, f"stranger-{uuid.uuid4().hex[:8]}")
    answer = client.post("/api/notifications", data=json.dumps(
        {"category": "goal-alerts", "audience": {"topic": "test-fans"}, "channels": ["push"], "title": "GOAL"}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=f"cb-{uuid.uuid4()}")
    assert answer.status_code in (200, 201, 202), answer.content
    notification_id = answer.json()["id"]
    names = {e.pk: e.url.rsplit("/", 1)[1] for e in (plain, detailed, stranger)}
    try:
        wait_until(lambda: receiver.of(names[plain.pk]), timeout=120, message="notification.completed")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; {state_of(notification_id, stack)}") from None
    done = Notification.objects.get(pk=notification_id)
    assert done.status == "completed" and done.failed > 0

    wait_until(lambda: sum(len(r["payload"]["data"]["recipients"]) for r in receiver.of(names[detailed.pk])
                           if r["payload"]["type"] == "delivery.failed") >= done.failed, timeout=60,
               message="every failed recipient reported")
    # A second finalize (the reconcile safety net can run one) reports nothing new.
    from apps.callbacks.tasks import report_completion

    report_completion.apply_async(args=[notification_id], queue=queues.CALLBACKS)
    import time

    time.sleep(2.0)
    completed = [r for r in receiver.of(names[plain.pk]) if r["payload"]["type"] == "notification.completed"]
    assert len(completed) == 1 and completed[0]["verified"]
    data = completed[0]["payload"]["data"]
    assert data["notification_id"] == notification_id and data["targeted"] == done.targeted == 3000
    assert (data["sent"], data["failed"] + data["dead_lettered"], data["skipped"]) == (done.sent, done.failed,
                                                                                       done.skipped)
    assert not any(r["payload"]["type"] != "notification.completed" for r in receiver.of(names[plain.pk]))
    assert receiver.of(names[stranger.pk]) == []

    failures = [r for r in receiver.of(names[detailed.pk]) if r["payload"]["type"] == "delivery.failed"]
    assert all(r["verified"] for r in failures) and len({r["id"] for r in failures}) == len(failures)
    recipients = [x for r in failures for x in r["payload"]["data"]["recipients"]]
    assert len(recipients) == len({x["recipient_id"] for x in recipients}) == done.failed
    assert all(len(r["payload"]["data"]["recipients"]) <= 100 for r in failures)
    assert len(failures) == -(-done.failed // 100)
    assert all(x["external_id"] and x["reason"] for x in recipients)


def test_registering_an_endpoint_over_the_api(client, settings):
    key, token = api_key(ApiScope.MANAGE_CALLBACKS)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def post(body: object) -> object:
        return client.post("/api/callbacks/endpoints", data=json.dumps(body), content_type="application/json",
                           **auth)

    created = post({"url": "http://127.0.0.1:9/hook", "event_types": ["delivery.failed"]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_") and Webhook(body["secret"])
    assert body["event_types"] == ["notification.completed", "delivery.failed"]
    listed = client.get("/api/callbacks/endpoints", **auth).json()
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    settings.OUTBOUND_ALLOWED_HOSTS = []
    for url in ("http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x",
                "https://169.254.169.254/x", "https://localhost/x", "not a url"):
        refused = post({"url": url})
        assert refused.status_code == 400 and refused.json()["field"] == "url", (url, refused.content)
    assert post({"url": "https://hooks.example.com/x", "event_types": ["delivery.sent"]}).json()["field"] \
        == "event_types"
    assert post({"url": "https://hooks.example.com/x", "secret": "mine"}).status_code == 400
    assert client.delete(f"/api/callbacks/endpoints/{body['id']}", **auth).status_code == 204
    assert client.delete(f"/api/callbacks/endpoints/{body['id']}", **auth).status_code == 404
    assert client.delete(f"/api/callbacks/endpoints/{2**70}", **auth).status_code in (400, 404, 422)
    _, other = api_key(ApiScope.SEND)
    refused = client.get("/api/callbacks/endpoints", HTTP_AUTHORIZATION=f"Bearer {other}")
    assert refused.status_code == 403 and refused.json()["scope"] == "manage_callbacks"


def test_the_delivery_log_is_read_only_in_the_admin_and_never_shows_the_secret(admin_client, receiver):  # noqa: F811
    key, _ = api_key()
    hook = endpoint(key, receiver, f"admin-{uuid.uuid4().hex[:8]}")
    sent = message(hook, "admin")
    CallbackAttempt.objects.create(message=sent, number=1, status_code=500, latency_ms=12.5, error="HTTP 500: oops")
    listing = admin_client.get("/admin/callbacks/callbackmessage/")
    assert listing.status_code == 200 and sent.pk in listing.content.decode()
    page = admin_client.get(f"/admin/callbacks/callbackmessage/{sent.pk}/change/").content.decode()
    assert "HTTP 500: oops" in page and "12.5" in page
    for url in (f"/admin/callbacks/callbackendpoint/{hook.pk}/change/", "/admin/callbacks/callbackattempt/",
                f"/admin/callbacks/callbackmessage/{sent.pk}/change/"):
        assert hook.secret not in admin_client.get(url).content.decode()
    assert admin_client.get("/admin/callbacks/callbackattempt/add/").status_code == 403
    assert admin_client.get("/admin/callbacks/callbackendpoint/add/").status_code == 403
    edit = admin_client.post(f"/admin/callbacks/callbackmessage/{sent.pk}/change/", {"status": "delivered"})
    assert edit.status_code == 403 and CallbackMessage.objects.get(pk=sent.pk).status == MessageStatus.PENDING


def state_of(notification_id: int, stack) -> str:  # noqa: ANN001
    """What a timed-out wait saw: the notification, its callback messages, the callbacks worker's last lines."""
    notification = Notification.objects.filter(pk=notification_id).values(
        "status", "targeted", "sent", "failed", "skipped").first()
    messages = list(CallbackMessage.objects.filter(notification_id=notification_id).values_list(
        "event_type", "status", "attempts"))
    log = stack.log_dir / "worker-callbacks.log"
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
    return f"notification {notification}; callback messages {messages}; worker-callbacks log:\n{tail}"
