"""Schemathesis against the served OpenAPI document, on the production web tier (tests/web_server.py:
gunicorn + uvicorn, DEBUG off): for every operation, requests built from the schema (valid ones and ones
broken on purpose) must never get a 500, and every answer must match the schema (status code documented,
JSON of the documented shape). Derandomized with a fixed number of examples, like the rest of the fuzzing,
so a CI result does not depend on luck; `--hypothesis-profile=explore` does not change these settings.
The API docs page (Swagger UI from ninja's own static files, served by whitenoise) loads in it too."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest
import schemathesis
from django.core import signing
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.audience import tokens
from apps.audience.models import Recipient, Topic
from apps.delivery.models import ApiKey, ApiScope
from tests.web_server import SECRET_KEY, web_server

# Creates the test database (pytest-django makes it only for a session with a django_db test); each test runs
# in a transaction of its own, so the module's committed fixtures stay for the server to see.
pytestmark = pytest.mark.django_db
EXAMPLES = 10  # per operation and phase, derandomized: CI time; --hypothesis-profile=explore style runs can raise it


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker, broker, tmp_path_factory) -> dict:
    """The live server, an API key with every scope and a recipient's user token (signed with the server's key)."""
    from apps.preferences.defaults import ensure_default_categories

    with django_db_blocker.unblock():
        ensure_default_categories()
        token = f"schema-{uuid.uuid4().hex}"
        ApiKey.objects.create(name=f"schemathesis-{token[-6:]}", token_sha256=ApiKey.hash(token),
                              scopes=list(ApiScope.values), rate_per_minute=1_000_000)
        user = Recipient.objects.create(external_id=f"schema-{uuid.uuid4().hex[:8]}")
        Topic.objects.create(slug=f"schema-{uuid.uuid4().hex[:6]}", name="Schema")
    user_token = signing.dumps({"r": user.pk}, key=SECRET_KEY, salt=tokens.SALT, compress=True)
    try:
        with web_server(tmp_path_factory.mktemp("static")) as url:
            yield {"url": url, "service": token, "user": user_token}
    finally:
        from django.core.management import call_command

        with django_db_blocker.unblock():
            # Schemathesis created recipients, devices, notifications and imports through the server, all
            # committed: leave the database as a transactional test does, or later modules count them.
            # Sequences kept: the session stack's Redis holds state under the notification ids used so far.
            call_command("flush", "--no-input", reset_sequences=False, verbosity=0)


@pytest.fixture(scope="module")
def api_schema(served):  # noqa: ANN201
    return schemathesis.openapi.from_url(f"{served['url']}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_500_and_every_answer_matches_the_schema(case, served):
    user_side = case.path.startswith(("/api/inbox", "/api/me/"))
    token = served["user"] if user_side else served["service"]
    # Not positive_data_acceptance: whether a well-formed request is accepted depends on the data (an unknown
    # category, topic or recipient is a documented 400 or 404), which a schema cannot say.
    case.call_and_validate(base_url=served["url"], headers={"Authorization": f"Bearer {token}"}, timeout=30,
                           excluded_checks=[positive_data_acceptance])


def test_the_docs_page_and_its_assets_load_with_debug_off(served):
    with urllib.request.urlopen(f"{served['url']}/api/docs", timeout=10) as answer:
        page = answer.read().decode()
    assets = re.findall(r'(?:href|src)="(/static/ninja/[^"]+)"', page)
    assert {"/static/ninja/swagger-ui-bundle.js", "/static/ninja/swagger-ui.css"} <= set(assets), page
    for asset in assets:
        with urllib.request.urlopen(served["url"] + asset, timeout=10) as answer:
            assert answer.status == 200 and answer.read(), asset
    with urllib.request.urlopen(f"{served['url']}/api/openapi.json", timeout=10) as answer:
        document = json.load(answer)
    assert document["openapi"].startswith("3.1") and "/api/notifications" in document["paths"]


def test_the_docs_page_renders_every_operation_in_headless_chromium(served, browser):
    """Swagger UI's JavaScript runs with DEBUG off: it fetches the document and lists each operation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{served['url']}/api/docs")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    shown = {element.get_attribute("data-path") or element.text
             for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/notifications", "/api/recipients/{external_id}/devices"} <= shown, shown
    assert "Notification platform API" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
