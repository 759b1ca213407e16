"""The permission matrix over every HTTP endpoint, written against URLs and HTTP behaviour (issue 16).

The operations are read from the served OpenAPI document, so an operation added without a row here fails
`test_every_served_operation_has_a_row`, and the scope each one declares is checked against what it does:
- an API-key operation: no key 401, an inactive key 401, a user token 401, a key holding every scope but
  the operation's 403 naming that scope with nothing recorded or changed, a key holding only that scope
  allowed (2xx);
- a recipient-token operation: no token 401, an API key (every scope) 401, the recipient's token allowed;
- the rest: the inbox stream (the recipient's token), signed preference and unsubscribe links, the health
  and readiness probes (anyone), /metrics (its token), the admin (a staff login).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client

from apps.audience.models import Device, Follow, Recipient, Topic
from apps.audience.tokens import issue
from apps.delivery.models import ApiKey, ApiScope, Notification, Source
from apps.delivery.requests import parse_request
from apps.delivery.service import record


@dataclass
class World:
    """What the requests of one row act on: a recipient of its own, a topic, the keys' own objects."""

    recipient: Recipient
    topic: Topic
    notification_id: int
    endpoint_id: str
    message_id: int
    attachment_id: int = 1


@dataclass
class Row:
    path: Callable[[World], str]
    body: Callable[[World], object] | None = None
    content_type: str = "application/json"


def _small_request() -> dict:
    return {"category": "goal-alerts", "audience": {"recipients": [1, 2, 3]}, "channels": ["push"], "title": "GOAL"}


def _rid(w: World) -> str:
    return w.recipient.external_id


# One row per operation: how to call it so that, with the right credential, it succeeds.
ROWS: dict[tuple[str, str], Row] = {
    ("POST", "/api/notifications"): Row(lambda w: "/api/notifications", lambda w: _small_request()),
    ("GET", "/api/notifications/{notification_id}"): Row(lambda w: f"/api/notifications/{w.notification_id}"),
    ("PUT", "/api/recipients/{external_id}"): Row(lambda w: f"/api/recipients/{_rid(w)}", lambda w: {"name": "Ada"}),
    ("GET", "/api/recipients/{external_id}"): Row(lambda w: f"/api/recipients/{_rid(w)}"),
    ("DELETE", "/api/recipients/{external_id}"): Row(lambda w: f"/api/recipients/{_rid(w)}"),
    ("POST", "/api/recipients/{external_id}/token"): Row(lambda w: f"/api/recipients/{_rid(w)}/token"),
    ("GET", "/api/recipients/{external_id}/deliveries"): Row(lambda w: f"/api/recipients/{_rid(w)}/deliveries"),
    ("PUT", "/api/recipients/{external_id}/devices"): Row(
        lambda w: f"/api/recipients/{_rid(w)}/devices", lambda w: {"platform": "fcm", "token": f"m-{uuid.uuid4()}"}),
    ("GET", "/api/recipients/{external_id}/devices"): Row(lambda w: f"/api/recipients/{_rid(w)}/devices"),
    ("POST", "/api/recipients/{external_id}/devices/unregister"): Row(
        lambda w: f"/api/recipients/{_rid(w)}/devices/unregister", lambda w: {"token": f"matrix-{_rid(w)}"}),
    ("PUT", "/api/recipients/{external_id}/topics/{slug}"): Row(
        lambda w: f"/api/recipients/{_rid(w)}/topics/{w.topic.slug}"),
    ("DELETE", "/api/recipients/{external_id}/topics/{slug}"): Row(
        lambda w: f"/api/recipients/{_rid(w)}/topics/{w.topic.slug}"),
    ("GET", "/api/recipients/{external_id}/topics"): Row(lambda w: f"/api/recipients/{_rid(w)}/topics"),
    ("POST", "/api/recipient-imports"): Row(lambda w: "/api/recipient-imports",
                                            lambda w: f"external_id,name\nimp-{uuid.uuid4().hex[:10]},Ada\n",
                                            "text/csv"),
    ("POST", "/api/callbacks/endpoints"): Row(lambda w: "/api/callbacks/endpoints",
                                              lambda w: {"url": "http://127.0.0.1:9/matrix"}),
    ("GET", "/api/callbacks/endpoints"): Row(lambda w: "/api/callbacks/endpoints"),
    ("DELETE", "/api/callbacks/endpoints/{endpoint_id}"): Row(lambda w: f"/api/callbacks/endpoints/{w.endpoint_id}"),
    ("GET", "/api/suppressions"): Row(lambda w: "/api/suppressions"),
    ("POST", "/api/attachments"): Row(lambda w: "/api/attachments?filename=matrix.txt", lambda w: "a file\n",
                                      "text/plain"),
    ("GET", "/api/attachments/{attachment_id}"): Row(lambda w: f"/api/attachments/{w.attachment_id}"),
    ("GET", "/api/inbox"): Row(lambda w: "/api/inbox"),
    ("POST", "/api/inbox/read-all"): Row(lambda w: "/api/inbox/read-all"),
    ("POST", "/api/inbox/{message_id}/read"): Row(lambda w: f"/api/inbox/{w.message_id}/read"),
    ("GET", "/api/me/preferences"): Row(lambda w: "/api/me/preferences"),
    ("PATCH", "/api/me/preferences"): Row(lambda w: "/api/me/preferences", lambda w: {"timezone": "Europe/London"}),
}


def served_operations() -> dict[tuple[str, str], list[dict]]:
    """(method, path) -> the operation's security requirements, from the served document."""
    document = Client().get("/api/openapi.json").json()
    return {(method.upper(), path): operation.get("security") or [] for path, operations in document["paths"].items()
            for method, operation in operations.items()}


def call(client: Client, operation: tuple[str, str], world: World, token: str | None):  # noqa: ANN201
    row = ROWS[operation]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if operation == ("POST", "/api/notifications"):
        headers["HTTP_IDEMPOTENCY_KEY"] = f"matrix-{uuid.uuid4()}"
    data = row.body(world) if row.body else None
    if data is not None and row.content_type == "application/json":
        data = json.dumps(data)
    method = getattr(client, operation[0].lower())
    if data is None:
        return method(row.path(world), **headers)
    return method(row.path(world), data=data, content_type=row.content_type, **headers)


def make_key(scopes: list[str], active: bool = True) -> tuple[str, ApiKey]:
    token = f"matrix-{uuid.uuid4().hex}"
    key = ApiKey.objects.create(name=f"matrix-{token[-10:]}", token_sha256=ApiKey.hash(token), scopes=scopes,
                                is_active=active)
    return token, key


def build_world(client: Client, owner_token: str, owner: ApiKey) -> World:
    from apps.inbox.models import InboxMessage

    recipient = Recipient.objects.create(external_id=f"matrix-{uuid.uuid4().hex[:8]}")
    Device.objects.create(recipient=recipient, platform="fcm", token=f"matrix-{recipient.external_id}")
    topic = Topic.objects.get_or_create(slug="matrix-team", defaults={"name": "Matrix"})[0]
    Follow.objects.create(recipient=recipient, topic=topic)
    notification = record(parse_request(_small_request(), idempotency_key=f"own-{uuid.uuid4()}"), Source.API,
                          owner)[0]
    endpoint_id = ""
    if ApiScope.MANAGE_CALLBACKS in owner.scopes:  # an endpoint of the key's own, for the DELETE row
        made = client.post("/api/callbacks/endpoints", data=json.dumps({"url": "http://127.0.0.1:9/own"}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {owner_token}")
        assert made.status_code == 201, made.content
        endpoint_id = str(made.json()["id"])
    message = InboxMessage.objects.create(recipient=recipient, title="Hello")
    attachment_id = 1
    if ApiScope.MANAGE_ATTACHMENTS in owner.scopes:  # a file of the key's own, for the GET row
        made = client.post("/api/attachments?filename=own.txt", data=b"own\n", content_type="text/plain",
                           HTTP_AUTHORIZATION=f"Bearer {owner_token}")
        assert made.status_code == 201, made.content
        attachment_id = made.json()["id"]
    return World(recipient, topic, notification.pk, endpoint_id or "1", message.pk, attachment_id)


def snapshot(world: World) -> tuple:
    from apps.callbacks.models import CallbackEndpoint

    recipient = Recipient.objects.filter(pk=world.recipient.pk).values().first()
    from apps.attachments.models import Attachment

    return (Notification.objects.count(), Recipient.objects.count(), Attachment.objects.count(), recipient,
            sorted(Device.objects.values_list("token", "is_active")), Follow.objects.count(),
            sorted(CallbackEndpoint.objects.values_list("pk", "is_active")))


@pytest.fixture
def categories(transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()


def test_every_served_operation_has_a_row(db):
    served = served_operations()
    assert set(served) <= set(ROWS), f"operations with no row in the matrix: {sorted(set(served) - set(ROWS))}"
    for operation, security in served.items():
        assert len(security) == 1 and set(security[0]) <= {"ScopedApiKey", "RecipientToken"}, (operation, security)
        if "ScopedApiKey" in security[0]:
            assert [scope in ApiScope.values for scope in security[0]["ScopedApiKey"]] == [True], operation


SERVICE = [op for op in ROWS if not op[1].startswith(("/api/inbox", "/api/me/"))]
USER = [op for op in ROWS if op not in SERVICE]


@pytest.mark.parametrize("operation", SERVICE, ids=" ".join)
def test_an_api_key_operation_needs_its_scope_and_only_that(client, categories, broker, operation):
    served = served_operations()
    if operation not in served:
        pytest.skip(f"{' '.join(operation)} is not served in this tree")
    (scope,) = served[operation][0]["ScopedApiKey"]
    only_token, only = make_key([scope])
    others_token, others = make_key([s for s in ApiScope.values if s != scope])
    world = build_world(client, only_token, only)
    inactive_token, _ = make_key(list(ApiScope.values), active=False)
    before = snapshot(world)

    for token in (None, inactive_token, issue(world.recipient)):
        refused = call(client, operation, world, token)
        assert refused.status_code == 401 and refused.json()["error"], (token, refused.content)
    refused = call(client, operation, world, others_token)
    assert refused.status_code == 403 and refused.json()["scope"] == scope, refused.content
    assert scope in refused.json()["error"]
    assert snapshot(world) == before, "a refused request changed something"

    allowed = call(client, operation, world, only_token)
    assert 200 <= allowed.status_code < 300, (scope, allowed.status_code, allowed.content[:500])


@pytest.mark.parametrize("operation", USER, ids=" ".join)
def test_a_recipient_operation_needs_the_recipients_own_token(client, categories, operation):
    served = served_operations()
    if operation not in served:
        pytest.skip(f"{' '.join(operation)} is not served in this tree")
    service_token, service = make_key(list(ApiScope.values))
    world = build_world(client, service_token, service)
    for token in (None, service_token, "not-a-token"):
        refused = call(client, operation, world, token)
        assert refused.status_code == 401 and refused.json()["error"], (token, refused.content)
    allowed = call(client, operation, world, issue(world.recipient))
    assert 200 <= allowed.status_code < 300, allowed.content[:500]


# --- the endpoints outside the API document ---

def test_the_inbox_stream_takes_the_recipients_token_only(client, categories, settings):
    settings.INBOX_STREAM_MAX_SECONDS = 0  # the allowed stream ends at once
    service_token, service = make_key(list(ApiScope.values))
    recipient = Recipient.objects.create(external_id=f"stream-{uuid.uuid4().hex[:8]}")
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {service_token}"}):
        assert client.get("/api/inbox/stream", **headers).status_code == 401
    allowed = client.get("/api/inbox/stream", HTTP_AUTHORIZATION=f"Bearer {issue(recipient)}")
    assert allowed.status_code == 200 and allowed["Content-Type"].startswith("text/event-stream")


def test_signed_links_need_a_valid_signature(client, categories):
    from apps.preferences.links import preference_page_url, unsubscribe_url

    recipient = Recipient.objects.create(external_id=f"link-{uuid.uuid4().hex[:8]}")
    for path in ("/preferences/", "/unsubscribe/"):
        assert client.get(f"{path}forged-token").status_code == 400
    for url in (preference_page_url(recipient.pk), unsubscribe_url(recipient.pk, "goal-alerts")):
        path = url.split("://", 1)[1].split("/", 1)[1]
        assert client.get(f"/{path}").status_code == 200, url


def test_probes_are_open_and_metrics_need_their_token(client, db, broker, settings):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    settings.METRICS_TOKEN = "matrix-metrics-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer matrix-metrics-token").status_code == 200


def test_the_admin_needs_a_staff_login(client, db):
    from django.contrib.auth.models import User

    for path in ("/admin/", "/admin/delivery/eventsource/", "/admin/delivery/apikey/"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"], path
    client.force_login(User.objects.create_user("not-staff", password="x-password-1"))
    assert client.get("/admin/delivery/eventsource/").status_code == 302
    client.force_login(User.objects.create_superuser("matrix-admin", "a@example.com", "x-password-2"))
    assert client.get("/admin/delivery/eventsource/").status_code == 200
