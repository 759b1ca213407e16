"""The README's commands, run as written (with this run's broker, topic and a fresh key swapped in)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from apps.delivery.models import EventSource, Notification
from apps.preferences.defaults import ensure_default_categories
from apps.streaming.topics import EVENTS, topic_name
from tests.conftest import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(heading: str) -> str:
    section = README.read_text().split(heading, 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def swap(command: str, old: str, new: str) -> str:
    assert old in command, f"the README's command no longer has {old!r}"
    return command.replace(old, new)


@pytest.mark.django_db(transaction=True)
def test_the_documented_publish_command_reaches_the_bridge(stack):
    ensure_default_categories()  # the example's category, security
    EventSource.objects.get_or_create(name="auth-service")  # the example's source, registered in the admin
    key = f"readme-{uuid.uuid4().hex[:8]}"
    command = readme_block("### Publishing events from other services")
    command = swap(command, ".venv/bin/python", shlex.quote(sys.executable))
    command = swap(command, '"$(cat var/kafka-bootstrap)"', shlex.quote(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    command = swap(command, f'"{EVENTS}"', f'"{topic_name(EVENTS)}"')
    command = swap(command, "otp-8812", key)
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], check=True, timeout=60)
    notification = wait_until(lambda: Notification.objects.filter(idempotency_key=key).first(), timeout=30,
                              message="the published event to be recorded")
    assert notification.title == "Your code is 123456"
