"""One validation path for every source: notify(), the signal, the HTTP API and a raw Kafka event refuse the
same bad request with the same error and the field named."""

from __future__ import annotations

import json

import pytest

from apps.bridge.handlers import BadMessage, _not_before, _notification_from_event
from apps.core import json_checks
from apps.delivery.batch_message import BadBatch, BatchMessage
from apps.delivery.models import ApiKey, ApiScope, EventSource
from apps.delivery.requests import RequestError
from apps.delivery.service import notify
from apps.delivery.signals import notification_requested
from tests.conftest import TEST_SOURCE

TOKEN = "request-checks-token"
GOOD = {"category": "goal-alerts", "audience": {"recipients": [1]}, "channels": ["push"], "title": "GOAL"}

BAD_REQUESTS = [
    ({"title": "GOAL\u0000"}, "title", "NUL"),
    ({"body": "x\u0000"}, "body", "NUL"),
    ({"context": {"team": "a\u0000"}}, "context.team", "NUL"),
    ({"context": {"\u0000": 1}}, "context", "NUL"),
    ({"context": {"a": json.loads("[" * 40 + "]" * 40)}}, "context.a[0]", "nested"),
    ({"audience": {"recipients": [2**32]}}, "audience.recipients", "recipient ids"),
    ({"audience": {"recipients": [True]}}, "audience.recipients", "recipient ids"),
    ({"audience": {"recipients": [1.0]}}, "audience.recipients", "recipient ids"),
    ({"audience": {"segment": 2**70}}, "audience.segment", "unknown segment"),
    ({"template_id": True}, "template_id", "unknown template"),
    ({"title": "x" * 201}, "title", "at most 200"),
    ({"channels": ["push", 3]}, "channels", "non-empty list"),
    ({"context": {"a": float("nan")}}, "context.a", "finite"),
    ({"idempotency_key": "k\u0000"}, "idempotency_key", "NUL"),
]


@pytest.fixture
def service_token(db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    ApiKey.objects.get_or_create(name="checks", defaults={"token_sha256": ApiKey.hash(TOKEN),
                                                          "scopes": list(ApiScope.values)})
    EventSource.objects.get_or_create(name=TEST_SOURCE)
    return TOKEN


def as_kwargs(request: dict) -> dict:
    return {"category": request["category"], "audience": request["audience"], "channels": request["channels"],
            **{k: request[k] for k in ("title", "body", "context", "idempotency_key", "template_id") if k in request}}


class FakeMessage:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list:
        return []


@pytest.mark.parametrize("change, field, words", BAD_REQUESTS)
def test_every_source_gives_the_same_error_with_the_field(client, service_token, change, field, words):
    request = GOOD | change | {"idempotency_key": change.get("idempotency_key", "checks-1")}
    with pytest.raises(RequestError) as from_python:
        notify(**as_kwargs(request))
    with pytest.raises(RequestError) as from_signal:
        notification_requested.send(sender=None, **as_kwargs(request))
    answer = client.post("/api/notifications", json.dumps(request, allow_nan=True), content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {service_token}")
    with pytest.raises(RequestError) as from_kafka:
        _notification_from_event(FakeMessage(json.dumps({**request, "source": TEST_SOURCE}, allow_nan=True).encode()))
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == from_python.value.field == from_signal.value.field == from_kafka.value.field, \
        (answer.json(), from_python.value.field, from_kafka.value.field)
    assert from_python.value.field.startswith(field)
    assert answer.json()["error"] == from_python.value.message == from_kafka.value.message
    assert words in from_python.value.message


@pytest.mark.parametrize("raw, words", [
    (b"{", "not valid JSON"), (b"\xff", "not valid JSON"), (b'{"a": NaN}', "finite"), (b"[-Infinity]", "finite"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper"), (b'{"a": "\\u0000"}', "NUL"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
])
def test_json_from_outside_is_refused_at_the_door(raw, words):
    with pytest.raises(RequestError) as refused:
        json_checks.decode(raw)
    assert words in str(refused.value)


@pytest.mark.parametrize("wire, words", [
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1, 1]}, "distinct"),
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [2**32]}, "each 1.."),
    ({"n": True, "c": "push", "p": "normal", "b": "x", "r": [1]}, "n (notification_id)"),
    ({"n": 1, "c": "fax", "p": "normal", "b": "x", "r": [1]}, "c (channel)"),
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1], "a": 0}, "a (attempt)"),
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1], "resume": 1}, "resume"),
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1], "d": "later"}, "d (deferred)"),
    ({"n": 1, "c": "push", "p": "normal", "b": "x", "r": [1], "replay!": True}, "unknown field"),
    ({"c": "push", "p": "normal", "b": "x", "r": [1]}, "n (notification_id): required"),
])
def test_a_bad_batch_names_its_field(wire, words):
    with pytest.raises(BadBatch) as refused:
        BatchMessage.decode(json.dumps(wire).encode())
    assert words in str(refused.value)


def test_a_batch_round_trips_in_its_short_form():
    batch = BatchMessage(7, "push", "high", "push:1:0", [3, 1, 2], attempt=2, deferred="throttled")
    assert json.loads(batch.encode()) == {"n": 7, "c": "push", "p": "high", "b": "push:1:0", "r": [3, 1, 2], "a": 2,
                                          "d": "throttled"}
    assert BatchMessage.decode(batch.encode()) == batch


class HeaderMessage:
    def __init__(self, value: bytes | None) -> None:
        self._headers = [("not-before", value)] if value is not None else []

    def headers(self) -> list:
        return self._headers


@pytest.mark.parametrize("value", [None, b"", b"soon", b"1e999", b"9" * 400, b"-5", b"\xff", b"99999999999999"])
def test_an_unreadable_or_absurd_not_before_header_is_bad(value):
    with pytest.raises(BadMessage, match="not-before"):
        _not_before(HeaderMessage(value))


@pytest.mark.parametrize("header, expected", [("inf", 3600.0), ("1e12", 3600.0), ("nan", None), ("-5", 0.0),
                                              ("30", 30.0), ("soon", None), (None, None)])
def test_a_providers_retry_after_is_clamped_to_an_hour(header, expected):
    from apps.delivery.sender import backoff
    from apps.providers.base import retry_after_seconds

    assert retry_after_seconds(header) == expected
    assert backoff(1, float("inf")) == 3600.0 and 0 <= backoff(1, float("nan")) <= 1.0
