"""Status callbacks to the calling service, on real things: a receiving HTTP server on 127.0.0.1 that
verifies every request with the `standardwebhooks` library and the callbacks Celery worker: retries with one
webhook-id, bounded attempts, refusals, internal addresses, duplicate tasks, the sweep. A real notification's
report, registration over the API and the admin's log: tests/callbacks/test_callbacks_reporting.py."""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackMessage, MessageStatus
from apps.callbacks.tasks import deliver, sweep
from apps.core import queues
from apps.delivery.models import ApiKey, ApiScope
from apps.harness import protocol_servers as servers
from apps.providers.standard_webhooks import new_secret
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A callback receiver: /<name> answers from its script (then 200), and records each request with
    whether its signature verified against the endpoint's secret."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.scripts: dict[str, list[int]] = defaultdict(list)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        app = web.Application()
        app.add_routes([web.post("/{name}", self.hook)])
        self.thread, self.base = servers.serve_aiohttp(app)

    async def hook(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await request.read()
        try:
            payload = Webhook(self.secrets[name]).verify(body, dict(request.headers))
            verified = True
        except (KeyError, WebhookVerificationError):
            payload, verified = json.loads(body or b"null"), False
        with self.lock:
            status = self.scripts[name].pop(0) if self.scripts[name] else 200
            self.requests.append({"name": name, "id": request.headers.get("webhook-id"), "verified": verified,
                                  "payload": payload, "status": status})
        return web.Response(status=status if verified else 401, text="" if status < 300 else "not now")

    def of(self, name: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["name"] == name]


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.thread.stop()


@pytest.fixture(scope="module")
def fast_callbacks(stack):
    """The stack's callbacks worker, restarted with a 0.2 s backoff, 100 recipients per outcome message,
    and leave to call the receiver on 127.0.0.1 (production allows only public https)."""
    overrides = {"NOTIFY_CALLBACK_RETRY_BASE_MS": "200", "NOTIFY_CALLBACK_BATCH_SIZE": "100",
                 "NOTIFY_CALLBACK_MAX_ATTEMPTS": "4", "NOTIFY_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}

    def restart(env: dict) -> None:
        stack.kill("worker-callbacks")
        saved = dict(stack.env)
        stack.env.update(env)
        try:
            stack.start_worker("worker-callbacks", [queues.CALLBACKS], 4, pool="threads")
        finally:
            stack.env.clear()
            stack.env.update(saved)

    restart(overrides)
    yield
    restart({})


def api_key(*scopes: str) -> tuple[ApiKey, str]:
    token = f"cb-{uuid.uuid4().hex}"
    key = ApiKey.objects.create(name=f"callbacks-{token[-8:]}", token_sha256=ApiKey.hash(token),
                                scopes=list(scopes or ApiScope.values))
    return key, token


def endpoint(key: ApiKey, receiver: Receiver, name: str, **fields: object) -> CallbackEndpoint:
    secret = new_secret()
    receiver.secrets[name] = secret
    return CallbackEndpoint.objects.create(api_key=key, url=f"{receiver.base}/{name}", secret=secret, **fields)


def message(endpoint_: CallbackEndpoint, name: str) -> CallbackMessage:
    body = json.dumps({"type": "notification.completed", "timestamp": "2026-12-01T00:00:00+00:00",
                       "data": {"notification_id": 1, "name": name}})
    return CallbackMessage.objects.create(id=f"msg_test_{uuid.uuid4().hex}", endpoint=endpoint_,
                                          event_type="notification.completed", notification_id=1, payload=body)


def settled(message_id: str, timeout: float = 30) -> CallbackMessage:
    return wait_until(lambda: CallbackMessage.objects.filter(pk=message_id).exclude(
        status=MessageStatus.PENDING).first(), timeout=timeout, message=f"callback {message_id} to settle")


def test_retries_keep_one_webhook_id_and_log_every_attempt(fast_callbacks, receiver):
    """The receiver answers 500 twice, then 200: three attempts with one webhook-id, all signed, logged."""
    key, _ = api_key()
    hook = endpoint(key, receiver, f"flaky-{uuid.uuid4().hex[:8]}")
    name = hook.url.rsplit("/", 1)[1]
    receiver.scripts[name] = [500, 500]
    sent = message(hook, name)
    deliver.apply_async(args=[sent.pk], queue=queues.CALLBACKS)
    done = settled(sent.pk)
    assert done.status == MessageStatus.DELIVERED and done.attempts == 3 and done.delivered_at
    requests = receiver.of(name)
    assert [r["status"] for r in requests] == [500, 500, 200]
    assert {r["id"] for r in requests} == {sent.pk} and all(r["verified"] for r in requests)
    assert requests[-1]["payload"]["data"]["name"] == name
    log = list(CallbackAttempt.objects.filter(message=sent).values_list("number", "status_code", "error"))
    assert [(n, code) for n, code, _ in log] == [(1, 500), (2, 500), (3, 200)]
    assert "HTTP 500" in log[0][2] and log[2][2] == ""
    assert all(a.latency_ms > 0 for a in CallbackAttempt.objects.filter(message=sent))
    assert hook.secret not in json.dumps(list(CallbackAttempt.objects.filter(message=sent).values()), default=str)


def test_attempts_are_bounded_then_the_message_is_failed(fast_callbacks, receiver):
    key, _ = api_key()
    hook = endpoint(key, receiver, f"down-{uuid.uuid4().hex[:8]}")
    name = hook.url.rsplit("/", 1)[1]
    receiver.scripts[name] = [503] * 10
    sent = message(hook, name)
    deliver.apply_async(args=[sent.pk], queue=queues.CALLBACKS)
    done = settled(sent.pk)
    assert done.status == MessageStatus.FAILED and done.attempts == 4  # NOTIFY_CALLBACK_MAX_ATTEMPTS
    assert len(receiver.of(name)) == 4 and CallbackAttempt.objects.filter(message=sent).count() == 4


def test_a_refusing_receiver_is_not_retried(fast_callbacks, receiver):
    key, _ = api_key()
    hook = endpoint(key, receiver, f"gone-{uuid.uuid4().hex[:8]}")
    name = hook.url.rsplit("/", 1)[1]
    receiver.scripts[name] = [410]
    sent = message(hook, name)
    deliver.apply_async(args=[sent.pk], queue=queues.CALLBACKS)
    done = settled(sent.pk)
    assert done.status == MessageStatus.FAILED and done.attempts == 1 and "HTTP 410" in done.last_error


def test_a_private_address_is_refused_before_any_request(fast_callbacks, receiver):
    """An endpoint stored with an internal address (written around the API's check) is never called."""
    key, _ = api_key()
    for url in ("https://169.254.169.254/latest/meta-data", "https://10.0.0.1/hook", "http://example.com/hook"):
        hook = CallbackEndpoint.objects.create(api_key=key, url=url, secret=new_secret())
        sent = message(hook, "internal")
        deliver.apply_async(args=[sent.pk], queue=queues.CALLBACKS)
        done = settled(sent.pk)
        assert done.status == MessageStatus.FAILED and done.attempts == 1 and "URL refused" in done.last_error, url
        assert CallbackAttempt.objects.get(message=sent).status_code is None


def test_two_copies_of_a_task_post_once(fast_callbacks, receiver):
    key, _ = api_key()
    hook = endpoint(key, receiver, f"twice-{uuid.uuid4().hex[:8]}")
    name = hook.url.rsplit("/", 1)[1]
    sent = message(hook, name)
    for _ in range(3):
        deliver.apply_async(args=[sent.pk], queue=queues.CALLBACKS)
    settled(sent.pk)
    sweep.apply_async(queue=queues.CALLBACKS)
    wait_until(lambda: CallbackMessage.objects.get(pk=sent.pk).status == MessageStatus.DELIVERED)
    import time

    time.sleep(1.0)
    assert len(receiver.of(name)) == 1


def test_the_sweep_sends_what_no_task_carries(fast_callbacks, receiver):
    """A message whose task was lost (Redis lost its queue) is sent by the sweep."""
    from datetime import timedelta

    from django.utils import timezone

    key, _ = api_key()
    hook = endpoint(key, receiver, f"lost-{uuid.uuid4().hex[:8]}")
    name = hook.url.rsplit("/", 1)[1]
    sent = message(hook, name)
    CallbackMessage.objects.filter(pk=sent.pk).update(created_at=timezone.now() - timedelta(minutes=15))
    sweep.apply_async(queue=queues.CALLBACKS)
    assert settled(sent.pk).status == MessageStatus.DELIVERED
    assert [r["id"] for r in receiver.of(name)] == [sent.pk]
