"""The README's HTTP API section against the served API: its table of operations and scopes equals the
OpenAPI document's (both ways), and its curl examples run, as written, against the production web tier."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from apps.api.api import api
from apps.audience.models import Recipient, Topic
from apps.delivery.models import ApiKey, ApiScope, Erasure, Notification
from tests.web_server import web_server

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.django_db


def api_section() -> str:
    text = README.read_text()
    start = text.index("### HTTP API\n")
    end = min(i for i in (text.find("\n## ", start), text.find("\n### ", start + 1)) if i > 0)
    return text[start:end]


def readme_operations() -> set[tuple[str, str, str]]:
    rows = re.findall(r"^\| `([A-Z]+)` \| `(/api/[^`]*)` \| ([^|]+) \|$", api_section(), re.MULTILINE)
    return {(method, path, scope.split(" (")[0].strip().strip("`")) for method, path, scope in rows}


def served_operations() -> set[tuple[str, str, str]]:
    found = set()
    for path, operations in api.get_openapi_schema()["paths"].items():
        for method, operation in operations.items():
            [requirement] = operation.get("security") or [{"none": []}]
            [(scheme, scopes)] = requirement.items()
            found.add((method.upper(), path, scopes[0] if scopes else
                       "user token" if scheme == "RecipientToken" else scheme))
    return found


def test_the_readme_table_is_the_served_schema():
    documented, served = readme_operations(), served_operations()
    assert documented, "no operations table in the README's HTTP API section"
    assert served - documented == set(), f"served but not in the README: {sorted(served - documented)}"
    assert documented - served == set(), f"in the README but not served: {sorted(documented - served)}"


@pytest.fixture(scope="module")  # module scope: its rows are committed before a test's transaction opens
def live(django_db_setup, django_db_blocker, broker, tmp_path_factory):
    from apps.preferences.defaults import ensure_default_categories

    token = f"docs-{uuid.uuid4().hex}"
    with django_db_blocker.unblock():
        ensure_default_categories()
        assert not Recipient.objects.filter(external_id="fan-42").exists()
        key = ApiKey.objects.create(name=f"readme-{token[-6:]}", token_sha256=ApiKey.hash(token),
                                    scopes=list(ApiScope.values))
        topic, _ = Topic.objects.get_or_create(slug="arsenal", defaults={"name": "Arsenal"})
    try:
        with web_server(tmp_path_factory.mktemp("static")) as url:
            yield {"BASE": url, "TOKEN": token, "key": key}
    finally:
        with django_db_blocker.unblock():
            Notification.objects.filter(api_key=key).delete()
            Erasure.objects.filter(requested_by=f"api key {key.name}").delete()
            Recipient.objects.filter(external_id="fan-42").delete()
            key.delete()
            topic.delete()


def test_the_readme_curl_examples_run(live, django_db_blocker):
    [script] = re.findall(r"```sh\n(.*?)```", api_section(), re.DOTALL)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "BASE": live["BASE"], "TOKEN": live["TOKEN"]})
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert '"phone": "+447911123456"' in done.stdout and '"outcome": "created"' in done.stdout
    assert '"erased": true' in done.stdout
    with django_db_blocker.unblock():
        assert Notification.objects.filter(api_key=live["key"], idempotency_key="match-42-goal-1").count() == 1
        assert not Recipient.objects.filter(external_id="fan-42").exists()
        assert Erasure.objects.filter(external_id_sha256=hashlib.sha256(b"fan-42").hexdigest()).exists()
