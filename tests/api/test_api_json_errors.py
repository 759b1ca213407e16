"""Everything under /api/ answers JSON, on the production web tier (tests/web_server.py: gunicorn + uvicorn,
DEBUG off), also where no operation ran: an unknown path is a 404 and a method the path does not take a 405
with its Allow header, both in the API's error shape ({"error": ...}); never Django's HTML pages, never a
500. Hypothesis sends any method to any path under /api/ (derandomized, the suite's profile)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.delivery.models import ApiKey, ApiScope
from tests.web_server import web_server

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker, broker, tmp_path_factory) -> dict:
    token = f"json-errors-{uuid.uuid4().hex}"
    with django_db_blocker.unblock():
        key = ApiKey.objects.create(name=f"json-errors-{token[-6:]}", token_sha256=ApiKey.hash(token),
                                    scopes=[ApiScope.READ_STATUS], rate_per_minute=1_000_000)
    try:
        with web_server(tmp_path_factory.mktemp("static")) as url:
            yield {"host": urllib.parse.urlsplit(url).netloc, "token": token}
    finally:
        with django_db_blocker.unblock():
            key.delete()


def call(served: dict, method: str, path: str, token: bool = False) -> tuple[int, dict, object]:
    connection = http.client.HTTPConnection(served["host"], timeout=30)
    headers = {"Authorization": f"Bearer {served['token']}"} if token else {}
    try:
        connection.request(method, path, headers=headers)
        answer = connection.getresponse()
        raw = answer.read()
        headers = {name.lower(): value for name, value in answer.getheaders()}
    finally:
        connection.close()
    is_json = headers.get("content-type", "").startswith("application/json") and method != "HEAD"  # HEAD: no body
    body = json.loads(raw) if is_json else raw
    return answer.status, headers, body


@pytest.mark.parametrize("path", [
    "/api/", "/api/nope", "/api/notifications/", "/api/notifications/1/2", "/api/recipients/a/b/c/d",
    "/api/callbacks", "/api/callbacks/endpoints/", "/api/inbox/stream/", "/api/%00", "/api/%ff%fe",
    "/api/" + "x" * 5000, "/api/recipients/%2e%2e/%2e%2e/admin/",
])
def test_an_unknown_path_is_a_json_404(served, path):
    status, headers, body = call(served, "GET", path)
    assert status == 404, (status, body)
    assert headers["content-type"] == "application/json" and set(body) == {"error"}, body
    assert body["error"].startswith("not found: no operation at this path")


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/notifications", "POST"),
    ("GET", "/api/notifications", "POST"),
    ("PATCH", "/api/recipients/fan-1", "DELETE, GET, PUT"),
    ("POST", "/api/recipients/fan-1/deliveries", "GET"),
    ("PUT", "/api/me/preferences", "GET, PATCH"),
    ("OPTIONS", "/api/recipient-imports", "POST"),
    ("POST", "/api/inbox/stream", "GET"),  # a plain async view, outside ninja
    ("BREW", "/api/callbacks/endpoints", "GET, POST"),
])
def test_a_wrong_method_is_a_json_405_with_allow(served, method, path, allowed):
    status, headers, body = call(served, method, path, token=True)
    assert status == 405, (status, body)
    assert headers["content-type"] == "application/json" and headers["allow"] == allowed
    assert body == {"error": f"method {method!r} not allowed here; allowed: {allowed}"}


def test_answers_that_are_json_already_are_left_as_they_are(served):
    status, _, body = call(served, "GET", "/api/notifications/999999999", token=True)
    assert status == 404 and body["field"] == "notification_id", body
    status, _, body = call(served, "GET", "/api/notifications/999999999")
    assert status == 401 and "missing token" in body["error"]
    status, headers, body = call(served, "GET", "/api/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, headers, body = call(served, "GET", "/nope")  # outside /api/: the site's own page
    assert status == 404 and headers["content-type"].startswith("text/html")


_SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"]) \
    | st.from_regex(r"\A[A-Z]{1,12}\Z")
_KNOWN = st.sampled_from(["notifications", "notifications/1", "recipients/fan-1", "recipients/fan-1/devices",
                          "recipients/fan-1/topics/t", "inbox", "inbox/stream", "inbox/1/read", "me/preferences",
                          "callbacks/endpoints", "callbacks/endpoints/1", "recipient-imports", "openapi.json"])


@given(method=_METHODS, segments=st.lists(_SEGMENT | _KNOWN, max_size=4), token=st.booleans())
def test_any_method_on_any_path_under_api_is_answered_json_never_a_500(served, method, segments, token):
    path = "/api/" + "/".join(urllib.parse.quote(segment, safe="/") for segment in segments)
    status, headers, body = call(served, method, path, token=token)
    assert status < 500, (method, path, status, body)
    if status >= 400 and method != "HEAD":
        assert headers.get("content-type", "").startswith("application/json"), (method, path, status, headers)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (method, path, body)
    if status == 405:
        assert headers.get("allow"), (method, path)
