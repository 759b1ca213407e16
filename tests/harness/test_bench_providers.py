"""bench_fanout through the real adapters (issue 14): `--provider fcm` (HTTP v1, one request per token,
OAuth token exchange) and `--provider email` (SMTP), end to end on the command's own stack (broker,
workers, bridges, the protocol server as a process with throwaway credentials), against this run's
database. Every device (every address) must reach the server exactly once, counted there."""

from __future__ import annotations

import json
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.delivery.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)

# Email goes one mail at a time per SMTP connection (apps/providers/email.py): fewer fans keep it short.
USERS = {"fcm": 600, "email": 500}


@pytest.fixture
def bench_settings():
    """bench_fanout sets the run's prefixes and broker on this process's settings: put them back."""
    names = ("REDIS_KEY_PREFIX", "KAFKA_TOPIC_PREFIX", "KAFKA_BOOTSTRAP_SERVERS", "FAKE_PROVIDER_URL")
    saved = {name: getattr(settings, name) for name in names}
    yield
    for name, value in saved.items():
        setattr(settings, name, value)


def bench(*args: str) -> dict:
    out = StringIO()
    call_command("bench_fanout", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def credential_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("notify-*-*")}


@pytest.mark.parametrize("provider", ["fcm", "email"])
def test_bench_fanout_through_a_real_adapter_reaches_every_device_once(provider, bench_settings):
    before = credential_dirs()
    users = USERS[provider]
    report = bench("--provider", provider, "--users", str(users), "--timeout", "120")
    assert report["config"]["provider"] == provider
    assert report["recipients"] == users
    assert report["delivered"] + report["skipped"] == users and report["failed"] == 0
    assert report["missing"] == 0 and report["duplicates"] == 0
    # The server counted one accepted request per device (FCM) or one mail per address (SMTP)...
    assert report["devices"] > (users * 1.1 if provider == "fcm" else users * 0.9)
    assert report["provider"]["tokens"] == report["devices"]
    assert report["provider"]["429"] == 0
    if provider == "fcm":  # ...one HTTP request each, not a 500-token firehose
        assert report["provider"]["requests"] == report["devices"]
    assert f"{provider}-server" in report["cpu_seconds"]
    assert report["cpu_us_per_recipient"] == round(sum(report["cpu_seconds"].values()) * 1e6 / users, 1) > 0
    assert not Notification.objects.exists()  # the run cleaned up its records
    assert credential_dirs() <= before  # and deleted its throwaway credentials


def test_faults_are_the_fake_providers_only(bench_settings):
    with pytest.raises(CommandError, match="fake provider only"):
        call_command("bench_fanout", "--provider", "fcm", "--users", "10", "--fail-5xx", "0.1")
