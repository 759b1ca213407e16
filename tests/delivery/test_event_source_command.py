"""manage.py event_source: create (the signing key printed once), list, limits, deactivate; least privilege
by default. On the running stack, a source made by the command is held to what the command set: its signed
event within its limits is delivered, one outside them and every event after deactivation dead-lettered."""

from __future__ import annotations

import hashlib
import hmac
import json
import shlex
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.delivery.models import DeadLetter, EventSource, Notification
from apps.streaming.topics import EVENTS, topic_name
from tests.bridge.test_bus_fuzzing import publish
from tests.conftest import reachable_fans, wait_until
from tests.delivery.test_pipeline import completed


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("event_source", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def categories(db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()


def test_create_is_least_privilege_and_prints_the_key_once(categories):
    out, err = run("create", "orders", "--owner", "team-orders", "--category", "security")
    source = EventSource.objects.get(name="orders")
    assert out.strip() == source.signing_key and len(source.signing_key) == 64
    assert source.signing_key not in err
    assert (source.owner, source.is_active) == ("team-orders", True)
    assert [c.slug for c in source.allowed_categories.all()] == ["security"]
    assert (source.allowed_audience_kinds, source.max_audience) == (["recipients"], 1)
    assert "categories security; audience kinds recipients; largest audience 1" in err

    listed, _ = run("list", "--json")
    assert json.loads(listed) == {"name": "orders", "owner": "team-orders", "is_active": True,
                                  "categories": ["security"], "audience_kinds": ["recipients"], "max_audience": 1,
                                  "signed": True}
    text, _ = run("list")
    assert "'orders'" in text and source.signing_key not in text and source.signing_key not in listed


def test_limits_change_only_what_is_given(categories):
    run("create", "crm", "--category", "security", "--unsigned")
    assert EventSource.objects.get(name="crm").signing_key == ""
    run("limits", "crm", "--audience-kind", "topic", "--audience-kind", "recipients", "--max-audience", "500")
    source = EventSource.objects.get(name="crm")
    assert (source.allowed_audience_kinds, source.max_audience) == (["topic", "recipients"], 500)
    assert [c.slug for c in source.allowed_categories.all()] == ["security"]
    run("limits", "crm", "--category", "goal-alerts", "--category", "security")
    assert sorted(c.slug for c in source.allowed_categories.all()) == ["goal-alerts", "security"]
    out, _ = run("limits", "crm", "--any-category", "--any-audience-kind", "--no-max-audience")
    source.refresh_from_db()
    assert (list(source.allowed_categories.all()), source.allowed_audience_kinds, source.max_audience) == ([], [], None)
    assert "categories any; audience kinds any; largest audience unlimited" in out
    run("deactivate", "crm")
    assert not EventSource.objects.get(name="crm").is_active
    run("activate", "crm")
    assert EventSource.objects.get(name="crm").is_active


@pytest.mark.parametrize("args, words", [
    (("create", "orders"), "--any-category"),
    (("create", "orders", "--category", "no-such"), "unknown category 'no-such'"),
    (("create", "platform", "--category", "security"), "platform's own source"),
    (("create", "not a slug", "--category", "security"), "name:"),
    (("create", "orders", "--category", "security", "--max-audience", "0"), "1 or more"),
    (("limits", "nobody", "--max-audience", "3"), "no event source named 'nobody'"),
    (("limits", "taken"), "nothing to change"),
    (("deactivate", "nobody"), "no event source named"),
    (("create", "taken", "--category", "security"), "already exists"),
])
def test_refusals_change_nothing(categories, args, words):
    EventSource.objects.create(name="taken")
    with pytest.raises(CommandError, match=words):
        run(*args)
    assert list(EventSource.objects.values_list("name", flat=True)) == ["taken"]


def test_mutually_exclusive_options_are_refused(categories):
    with pytest.raises(CommandError, match="not allowed with"):
        run("create", "orders", "--category", "security", "--any-category")


def _signed_event(source: str, key: str, recipient: int, **changes: object) -> tuple[str, bytes, list]:
    body = json.dumps({"source": source, "idempotency_key": f"cmd-{uuid.uuid4()}", "category": "security",
                       "audience": {"recipients": [recipient]}, "channels": ["push"], "title": "Your code is 42",
                       **changes}).encode()
    return topic_name(EVENTS), body, [("signature", hmac.new(key.encode(), body, hashlib.sha256).hexdigest().encode())]


@pytest.mark.django_db(transaction=True)
def test_the_bridge_holds_a_source_to_what_the_command_set(stack, provider, fans):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    recipients = reachable_fans(2, "security")
    name = f"cmd-{uuid.uuid4().hex[:6]}"
    key = run("create", name, "--category", "security")[0].strip()
    within = _signed_event(name, key, recipients[0])
    outside = [_signed_event(name, key, recipients[0], category="goal-alerts"),
               _signed_event(name, key, recipients[0], audience={"recipients": recipients}),
               _signed_event(name, key, recipients[0], audience={"topic": fans.topic.slug})]
    positions = publish([within, *outside])

    def letter(position: tuple[str, int, int]) -> DeadLetter | None:
        return DeadLetter.objects.filter(topic=position[0], partition=position[1], offset=position[2]).first()

    letters = wait_until(lambda: all(letter(p) for p in positions[1:]) and [letter(p) for p in positions[1:]],
                         timeout=90, message="the events outside the source's limits")
    assert [(x.reason_kind, x.reason.split("(field ")[-1]) for x in letters] == [
        ("unauthorized", "category)"), ("unauthorized", "audience.recipients)"), ("unauthorized", "audience.topic)")]
    notification = wait_until(lambda: Notification.objects.filter(
        idempotency_key=json.loads(within[1])["idempotency_key"]).first(), timeout=90, message="the event within")
    assert completed(notification.pk).sent == 1 and notification.event_source.name == name
    assert letter(positions[0]) is None

    run("deactivate", name)
    after = _signed_event(name, key, recipients[0])
    (position,) = publish([after])
    dead = wait_until(lambda: letter(position), timeout=90, message="the event of the deactivated source")
    assert dead.reason_kind == "unauthorized" and "is inactive" in dead.reason
    assert not Notification.objects.filter(idempotency_key=json.loads(after[1])["idempotency_key"]).exists()


def test_the_readmes_commands_run_as_written(categories):
    from tests.notifications_project.test_readme_commands import readme_block

    for line in readme_block("### Event sources from the command line").strip().splitlines():
        words = shlex.split(line, comments=True)
        assert words[:3] == ["python", "manage.py", "event_source"], line
        run(*[word for word in words[3:] if word != "[--json]"])
    source = EventSource.objects.get(name="auth-service")
    assert (source.is_active, source.allowed_audience_kinds, source.max_audience) == (False, ["recipients"], 1)
