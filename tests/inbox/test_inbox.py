"""In-app channel: the inbox written by the provider, its API (list, read), and the live stream."""

import json
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core import signing
from django.test import AsyncClient

from apps.audience.models import Recipient
from apps.delivery.models import ApiKey, ApiScope
from apps.delivery.service import notify
from apps.inbox.models import InboxMessage
from apps.inbox.transport import InAppTransport
from apps.providers.base import Content, Outcome, Target
from tests.delivery.test_pipeline import completed

SERVICE_TOKEN = "inbox-service-token"


@pytest.fixture
def fan(transactional_db, client):
    ApiKey.objects.get_or_create(name="inbox-tests", defaults={"token_sha256": ApiKey.hash(SERVICE_TOKEN),
                                                               "scopes": list(ApiScope.values)})
    recipient = Recipient.objects.create(external_id=f"user-{uuid.uuid4().hex[:8]}")
    answer = client.post(f"/api/recipients/{recipient.external_id}/token",
                         HTTP_AUTHORIZATION=f"Bearer {SERVICE_TOKEN}")
    assert answer.status_code == 200
    return recipient, {"HTTP_AUTHORIZATION": f"Bearer {answer.json()['token']}"}


def test_in_app_messages_are_listed_and_marked_read(client, fan):
    recipient, auth = fan
    other = Recipient.objects.create(external_id=f"other-{uuid.uuid4().hex[:8]}")
    results = InAppTransport().send(Content(title="GOAL!", body="1-0", data={"m": 1}),
                                          [Target(recipient.pk, str(recipient.pk)), Target(other.pk, str(other.pk))])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    inbox = client.get("/api/inbox", **auth).json()
    assert inbox["unread"] == 1 and [m["title"] for m in inbox["messages"]] == ["GOAL!"]
    message_id = inbox["messages"][0]["id"]
    assert str(message_id) == results[0].provider_id
    assert client.post(f"/api/inbox/{message_id}/read", **auth).status_code == 200
    assert client.get("/api/inbox?unread=1", **auth).json() == {"messages": [], "unread": 0}
    other_message = InboxMessage.objects.get(recipient=other).pk
    assert client.post(f"/api/inbox/{other_message}/read", **auth).status_code == 404  # not this user's


def test_inbox_refuses_missing_tampered_and_foreign_tokens(client, fan):
    recipient, auth = fan
    assert client.get("/api/inbox").status_code == 401
    token = auth["HTTP_AUTHORIZATION"][7:]
    answer = client.get("/api/inbox", HTTP_AUTHORIZATION=f"Bearer {token[:-2]}xx")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid token"
    forged = signing.dumps({"r": recipient.pk}, key="not-our-secret", salt="recipient-token")
    assert client.get("/api/inbox", HTTP_AUTHORIZATION=f"Bearer {forged}").status_code == 401
    assert client.post("/api/recipients/nobody/token", HTTP_AUTHORIZATION=f"Bearer {SERVICE_TOKEN}").status_code == 404
    assert client.post(f"/api/recipients/{recipient.external_id}/token").status_code == 401
    assert client.get("/api/inbox?before=abc", **auth).status_code == 400


def test_live_stream_pushes_new_messages_and_resumes_from_last_event_id(fan):
    recipient, auth = fan
    send = sync_to_async(lambda title: InAppTransport().send(Content(title=title), [Target(recipient.pk, "")]))

    headers = {"Authorization": auth["HTTP_AUTHORIZATION"]}

    async def stream() -> tuple[dict, dict]:
        client = AsyncClient()
        response = await client.get("/api/inbox/stream", headers=headers)
        assert response["Content-Type"] == "text/event-stream"
        events = aiter(response.streaming_content)
        assert await anext(events) == b"retry: 3000\n\n"  # the stream is subscribed from here on
        await send("live one")
        event = (await anext(events)).decode()
        assert event.startswith("id: ") and "event: message" in event
        live = json.loads(event.split("data: ", 1)[1])
        await events.aclose()

        await send("while away")
        resumed = await client.get("/api/inbox/stream", headers={**headers, "Last-Event-ID": str(live["id"])})
        events = aiter(resumed.streaming_content)
        await anext(events)
        caught_up = json.loads((await anext(events)).decode().split("data: ", 1)[1])
        await events.aclose()
        return live, caught_up

    live, caught_up = async_to_sync(stream)()
    assert live["title"] == "live one" and caught_up["title"] == "while away"


@pytest.mark.django_db(transaction=True)
def test_in_app_through_the_pipeline_reaches_every_active_fan(stack, fans):
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["in_app"],
                          title="GOAL in-app", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    assert done.sent > 2000 and done.failed == 0
    assert InboxMessage.objects.filter(title="GOAL in-app").count() == done.sent
    assert InboxMessage.objects.filter(title="GOAL in-app").values("recipient").distinct().count() == done.sent
