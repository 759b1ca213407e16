import json
import uuid

import pytest

from apps.delivery.models import ApiKey, Notification

from .test_pipeline import completed

TOKEN = "test-token-123"


@pytest.fixture
def api(client, transactional_db):
    ApiKey.objects.get_or_create(name="tests", defaults={"token_sha256": ApiKey.hash(TOKEN)})

    def post(body, token=TOKEN, key=None, raw=None):
        headers = {}
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if key:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        data = raw if raw is not None else json.dumps(body)
        return client.post("/api/notifications", data=data, content_type="application/json", **headers)

    return post


def body(**overrides):
    return {"category": "goal-alerts", "audience": {"topic": "test-fans"}, "channels": ["push"], "title": "GOAL",
            **overrides}


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
