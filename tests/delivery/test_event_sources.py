"""Raw events on notify.events name their source, and a source is held to its allow-lists (issue 16).

Published through a plain librdkafka producer, as another service would, to the running stack: an event
from an unknown or inactive source, outside its source's allow-lists, unsigned or forged for a source that
signs, or pretending to be the platform's own, is dead-lettered by the real events bridge with the reason
(kind "unauthorized"), its payload and its position, and nothing is recorded for it; the events within
their rights are delivered, each in its source's idempotency scope.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid

import pytest

from apps.delivery.models import DeadLetter, EventSource, Notification
from apps.preferences.models import Category
from apps.streaming.topics import EVENTS, topic_name
from tests.bridge.test_bus_fuzzing import publish
from tests.conftest import reachable_fans, wait_until
from tests.delivery.test_pipeline import completed
from tests.monitoring.test_monitoring import scrape, total


def event(source: str, recipients: list[int], **changes: object) -> dict:
    return {"source": source, "idempotency_key": f"src-{uuid.uuid4()}", "category": "security",
            "audience": {"recipients": recipients}, "channels": ["push"], "title": "Your code is 123456", **changes}


def signed(body: bytes, key: str) -> list[tuple[str, bytes]]:
    return [("signature", hmac.new(key.encode(), body, hashlib.sha256).hexdigest().encode())]


@pytest.mark.django_db(transaction=True)
def test_events_outside_their_sources_rights_are_dead_lettered_and_the_rest_delivered(stack, provider, fans,
                                                                                      client):
    ids = reachable_fans(3, "security")
    tag = uuid.uuid4().hex[:6]
    limited = EventSource.objects.create(name=f"orders-{tag}", allowed_audience_kinds=["recipients"], max_audience=2)
    limited.allowed_categories.set(Category.objects.filter(slug="security"))
    inactive = EventSource.objects.create(name=f"retired-{tag}", is_active=False)
    key = secrets.token_hex(32)
    signing = EventSource.objects.create(name=f"signed-{tag}", signing_key=key)
    one = ids[:1]

    refused = [  # (event, headers, field, words)
        (event(f"nobody-{tag}", one), [], "source", "unknown source"),
        (event(inactive.name, one), [], "source", "is inactive"),
        (event(limited.name, one, category="goal-alerts"), [], "category", "may not send category 'goal-alerts'"),
        (event(limited.name, one, audience={"topic": "test-fans"}), [], "audience.topic", "may not target a 'topic'"),
        (event(limited.name, ids), [], "audience.recipients", "(2 recipients)"),
        (event(signing.name, one), [], "source", "'signature' header is missing"),
        (event(signing.name, one), [("signature", b"0" * 64)], "source", "bad signature"),
        ({"notification_id": 999_999_999, "priority": "high", "source": "platform"}, [], "source", "not signed"),
    ]
    within_limits = event(limited.name, one)
    signed_event = event(signing.name, one)
    signed_body = json.dumps(signed_event).encode()
    messages = [(topic_name(EVENTS), json.dumps(e).encode(), headers) for e, headers, _, _ in refused]
    messages += [(topic_name(EVENTS), json.dumps(within_limits).encode(), []),
                 (topic_name(EVENTS), signed_body, signed(signed_body, key))]
    counted = total(scrape(client), "notify_dead_letters_total", source="events", reason_kind="unauthorized")
    positions = publish(messages)

    def letter_at(position: tuple[str, int, int]) -> DeadLetter | None:
        topic, partition, offset = position
        return DeadLetter.objects.filter(topic=topic, partition=partition, offset=offset).first()

    letters = wait_until(lambda: [letter_at(p) for p in positions[:len(refused)]] if all(
        letter_at(p) for p in positions[:len(refused)]) else None, timeout=60, message="every refused event")
    for letter, (_, _, field, words), (_, value, _) in zip(letters, refused, messages, strict=False):
        assert letter.reason_kind == "unauthorized", letter.reason
        assert words in letter.reason and f"(field {field})" in letter.reason, (letter.reason, words, field)
        assert letter.payload == value.decode() and letter.payload_size == len(value)
    keys = [body["idempotency_key"] for body, *_ in refused if "idempotency_key" in body]
    assert not Notification.objects.filter(idempotency_key__in=keys).exists()
    assert not DeadLetter.objects.filter(notification_id=999_999_999).exists()  # the forgery was never dispatched
    assert total(scrape(client), "notify_dead_letters_total", source="events",
                 reason_kind="unauthorized") - counted == len(refused)

    for sent_event, source in ((within_limits, limited), (signed_event, signing)):
        notification = wait_until(lambda e=sent_event: Notification.objects.filter(
            idempotency_key=e["idempotency_key"]).first(), message="the event within its rights")
        assert completed(notification.pk).sent == 1
        assert notification.event_source_id == source.pk and notification.idempotency_scope == f"source:{source.pk}"
    assert not [letter_at(p) for p in positions[len(refused):] if letter_at(p)]


@pytest.mark.django_db(transaction=True)
def test_a_raw_event_cannot_choose_its_priority(stack, provider, fans, event_source):
    """The priority is the category's, from the database: a raw event naming one is refused as a field it may
    not set, and the platform's own events are signed."""
    recipient = reachable_fans(1, "security")[0]
    bad = event(event_source.name, [recipient], category="goal-alerts", priority="high")
    (position,) = publish([(topic_name(EVENTS), json.dumps(bad).encode(), [])])
    letter = wait_until(lambda: DeadLetter.objects.filter(topic=position[0], partition=position[1],
                                                          offset=position[2]).first(), message="the dead letter")
    assert letter.reason_kind == "invalid" and "priority: unknown field" in letter.reason, letter.reason
    assert not Notification.objects.filter(idempotency_key=bad["idempotency_key"]).exists()


def test_the_platform_name_is_reserved(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="platform"):
        EventSource(name="platform").full_clean()


def test_event_sources_are_managed_in_the_admin(admin_client, db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    security = Category.objects.get(slug="security")
    answer = admin_client.post("/admin/delivery/eventsource/add/", {
        "name": "orders", "owner": "team-orders", "is_active": "on", "allowed_categories": [security.pk],
        "allowed_audience_kinds": ["recipients"], "max_audience": "10", "signing_key": ""})
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    source = EventSource.objects.get(name="orders")
    assert list(source.allowed_categories.all()) == [security] and source.allowed_audience_kinds == ["recipients"]
    assert source.max_audience == 10
    listing = admin_client.get("/admin/delivery/eventsource/")
    assert listing.status_code == 200 and b"orders" in listing.content


@pytest.mark.django_db(transaction=True)
def test_an_unsigned_platform_event_is_refused_and_its_replay_dispatches_it_signed(stack, provider, fans):
    """An event from before events were signed, still on the topic at an upgrade: dead-lettered, and the
    operator's replay publishes it anew, signed, with the priority of the notification's category."""
    from django.core.management import call_command

    from apps.delivery.models import Source
    from apps.delivery.requests import parse_request
    from apps.delivery.service import record

    recipient = reachable_fans(1, "security")[0]
    notification = record(parse_request({"category": "security", "audience": {"recipients": [recipient]},
                                         "channels": ["push"], "title": "Your code"},
                                        idempotency_key=f"old-{uuid.uuid4()}"), Source.PYTHON)[0]
    old = json.dumps({"notification_id": notification.pk, "priority": "low"}).encode()
    (position,) = publish([(topic_name(EVENTS), old, [])])
    letter = wait_until(lambda: DeadLetter.objects.filter(topic=position[0], partition=position[1],
                                                          offset=position[2]).first(), message="the dead letter")
    assert letter.reason_kind == "invalid" and "source: required" in letter.reason, letter.reason
    notification.refresh_from_db()
    assert notification.status == "accepted"
    call_command("replay_dead_letters", str(letter.pk))
    assert completed(notification.pk).sent == 1
