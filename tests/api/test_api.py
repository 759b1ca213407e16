"""The service API: scopes on every endpoint, per-key allow-lists and rate, and its keys (the command, the
admin). Idempotency keys: tests/api/test_api_idempotency.py."""

import json
import uuid

import pytest

from apps.audience.models import Recipient
from apps.delivery.models import ApiKey, ApiScope, Notification, Source
from apps.delivery.requests import parse_request
from apps.delivery.service import record
from tests.delivery.test_pipeline import completed

TOKEN = "test-token-123"


def make_key(name: str, scopes=tuple(ApiScope.values), **fields) -> str:  # noqa: ANN001
    token = f"{name}-{uuid.uuid4().hex}"
    ApiKey.objects.create(name=f"{name}-{token[-6:]}", token_sha256=ApiKey.hash(token), scopes=list(scopes), **fields)
    return token


@pytest.fixture
def api(client, transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    ApiKey.objects.get_or_create(name="tests", defaults={"token_sha256": ApiKey.hash(TOKEN),
                                                         "scopes": list(ApiScope.values)})

    def post(body, token=TOKEN, key=None, raw=None):  # noqa: ANN001, ANN202
        headers = {}
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if key:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        data = raw if raw is not None else json.dumps(body)
        return client.post("/api/notifications", data=data, content_type="application/json", **headers)

    return post


def body(**overrides):  # noqa: ANN201
    return {"category": "goal-alerts", "audience": {"topic": "test-fans"}, "channels": ["push"], "title": "GOAL",
            **overrides}


def small(**overrides):  # noqa: ANN201
    """A request whose audience needs no seeding."""
    return body(**{"audience": {"recipients": [1, 2, 3]}, **overrides})


@pytest.mark.parametrize("token, status, message", [(None, 401, "missing token"), ("wrong", 401, "invalid token")])
def test_token_is_required(api, fans, token, status, message):
    response = api(body(), token=token)
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize("payload, field", [
    (body(category="nope"), "category"),
    (body(channels=["pigeon"]), "channels"),
    (body(channels=[]), "channels"),
    (body(audience={"topic": "no-such-team"}), "audience.topic"),
    (body(audience={"recipients": ["a"]}), "audience.recipients"),
    (body(title="", body=""), "body"),
    (body(colour="red"), "colour"),
    ([1, 2], "body"),
])
def test_bad_bodies_get_400_naming_the_field(api, fans, payload, field):
    response = api(payload)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_malformed_and_oversized_bodies(api, fans, settings):
    response = api(None, raw="{nope")
    assert response.status_code == 400 and response.json()["field"] == "body"
    response = api(body(body="x" * (settings.API_MAX_BODY_BYTES + 10)))
    assert response.status_code == 413


def test_post_then_get_status_and_same_key_same_notification(api, client, stack, provider, fans):
    key = f"api-{uuid.uuid4()}"
    first = api(body(), key=key)
    assert first.status_code == 202, first.content
    again = api(body(), key=key)
    assert again.json()["id"] == first.json()["id"]
    assert Notification.objects.filter(idempotency_key=key).count() == 1
    completed(first.json()["id"])
    status = client.get(f"/api/notifications/{first.json()['id']}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert status["status"] == "completed" and status["targeted"] == 3000 and status["pending"] == 0
    assert status["sent"] + status["skipped"] + status["failed"] == 3000
    assert client.get("/api/notifications/999999", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    assert client.get(f"/api/notifications/{first.json()['id']}").status_code == 401


# --- the permission matrix: every service endpoint, with no key, a key lacking its scope, and its scope ---

def _call(client, endpoint: str, token: str | None, fixtures: dict):  # noqa: ANN001, ANN202
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    external_id = fixtures["recipient"].external_id
    if endpoint == "send":
        return client.post("/api/notifications", data=json.dumps(small()), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=f"m-{uuid.uuid4()}", **headers)
    if endpoint == "read_status":
        return client.get(f"/api/notifications/{fixtures['notification'][token]}", **headers) if token \
            else client.get("/api/notifications/1")
    if endpoint == "manage_recipients":
        return client.put(f"/api/recipients/{external_id}", data=json.dumps({"name": "Ada"}),
                          content_type="application/json", **headers)
    if endpoint == "manage_devices":
        return client.put(f"/api/recipients/{external_id}/devices", content_type="application/json",
                          data=json.dumps({"platform": "fcm", "token": f"matrix-{uuid.uuid4()}"}), **headers)
    if endpoint == "erase_recipients":
        return client.delete(f"/api/recipients/{external_id}", **headers)
    if endpoint == "mint_user_tokens":
        return client.post(f"/api/recipients/{external_id}/token", **headers)
    if endpoint == "manage_callbacks":
        return client.post("/api/callbacks/endpoints", data=json.dumps({"url": "http://127.0.0.1:9/matrix"}),
                           content_type="application/json", **headers)
    if endpoint == "read_suppressions":
        return client.get("/api/suppressions", **headers)
    if endpoint == "manage_attachments":
        return client.post("/api/attachments?filename=matrix.txt", data=b"a file\n", content_type="text/plain",
                           **headers)
    return client.get(f"/api/recipients/{external_id}/deliveries", **headers)


@pytest.mark.parametrize("scope", list(ApiScope.values))
def test_permission_matrix(api, client, broker, scope):
    """No key: 401. Every scope but this one: 403 naming the missing scope, nothing done. Only this one: allowed."""
    others = make_key("others", [s for s in ApiScope.values if s != scope])
    only = make_key("only", [scope])
    recipient = Recipient.objects.create(external_id=f"m-{uuid.uuid4().hex[:8]}")
    notification = {}
    for token in (others, only):  # each key reads the status of a notification of its own
        request = parse_request(small(), idempotency_key=f"own-{uuid.uuid4()}")
        notification[token] = record(request, Source.API, ApiKey.objects.get(token_sha256=ApiKey.hash(token)))[0].pk
    fixtures = {"recipient": recipient, "notification": notification}
    before = Notification.objects.count()

    assert _call(client, scope, None, fixtures).status_code == 401
    refused = _call(client, scope, others, fixtures)
    assert refused.status_code == 403 and refused.json()["scope"] == scope, refused.content
    assert scope in refused.json()["error"]
    recipient.refresh_from_db()
    assert Notification.objects.count() == before and recipient.name == "" and not recipient.devices.exists()
    allowed = _call(client, scope, only, fixtures)
    assert allowed.status_code in (200, 201, 202), (scope, allowed.content)


def test_a_key_reads_only_its_own_notifications(api, client, broker):
    mine, theirs = make_key("mine"), make_key("theirs")
    answer = client.post("/api/notifications", data=json.dumps(small()), content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert answer.status_code == 202
    path = f"/api/notifications/{answer.json()['id']}"
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {mine}").status_code == 404
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {theirs}").status_code == 200


@pytest.mark.parametrize("limits, payload, field", [
    ({"categories": ["goal-alerts"]}, small(category="security"), "category"),
    ({"allowed_audience_kinds": ["recipients", "topic"]}, small(audience={"all": True}), "audience.all"),
    ({"max_audience": 2}, small(), "audience.recipients"),
])
def test_allow_lists_and_largest_audience_refuse_with_the_field(api, client, limits, payload, field):
    from apps.preferences.models import Category

    slugs = limits.pop("categories", [])
    token = make_key("limited", **limits)
    ApiKey.objects.get(token_sha256=ApiKey.hash(token)).allowed_categories.set(Category.objects.filter(slug__in=slugs))
    answer = api(payload, token=token, key=f"l-{uuid.uuid4()}")
    assert answer.status_code == 403 and answer.json()["field"] == field, answer.content
    assert not Notification.objects.exists()


def test_within_its_limits_a_limited_key_sends(api, broker):
    token = make_key("limited", [ApiScope.SEND], allowed_audience_kinds=["recipients"], max_audience=3)
    assert api(small(), token=token).status_code == 202


# --- rate ---

def test_a_key_over_its_rate_gets_429_with_retry_after(api, client):
    token = make_key("slow", rate_per_minute=3)
    answers = [client.get("/api/notifications/1", HTTP_AUTHORIZATION=f"Bearer {token}") for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60 and "rate limit" in answers[-1].json()["error"]
    assert client.get("/api/notifications/1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404  # per key


# --- the management command ---

def test_create_api_key_command_makes_a_scoped_key(api, client):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_key", "shop", "--owner", "payments", "--scope", "send", "--category", "security",
                 "--audience-kind", "recipients", "--max-audience", "1", stdout=out)
    token = out.getvalue().strip()
    api_key = ApiKey.objects.get(token_sha256=ApiKey.hash(token))
    assert api_key.scopes == ["send"] and api_key.owner == "payments" and api_key.max_audience == 1
    assert list(api_key.allowed_categories.values_list("slug", flat=True)) == ["security"]
    assert client.get("/api/notifications/1", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403


def test_adding_a_key_in_the_admin_shows_its_secret_once(api, client):
    import re

    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("keys", "keys@example.com", "pw-keys-1"))
    answer = client.post("/admin/delivery/apikey/add/", {"name": "from-admin", "owner": "ops", "is_active": "on",
                                                         "scopes": ["send", "read_status"]}, follow=True)
    assert answer.status_code == 200
    token = re.search(r"is (\S+) \. Copy it now", answer.content.decode()).group(1)
    api_key = ApiKey.objects.get(name="from-admin")
    assert api_key.token_sha256 == ApiKey.hash(token) and api_key.scopes == ["send", "read_status"]
    assert token not in client.get(f"/admin/delivery/apikey/{api_key.pk}/change/").content.decode()
