"""Metrics, consumer lag, health and logs, against the real pipeline and services."""

import json
import logging
import re
import selectors
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.core.logs import ContextFilter, JsonFormatter, log_context
from apps.delivery.service import notify
from apps.harness.fake_server import Faults
from apps.monitoring import views
from apps.streaming.lag import group_lag
from apps.streaming.topics import bridge_groups
from tests.conftest import CROWD_TOPIC, wait_until
from tests.delivery.test_pipeline import completed


def scrape(client) -> dict[str, float]:  # noqa: ANN001
    answer = client.get("/metrics")
    assert answer.status_code == 200
    samples = {}
    for line in answer.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and all(w in k for w in wanted))


@pytest.mark.django_db(transaction=True)
def test_metrics_count_a_real_fan_out(stack, provider, fans, client):
    before = scrape(client)
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push"],
                          title="metrics", idempotency_key=f"t-{uuid.uuid4()}")
    done = completed(notification.pk)
    views._lag_cache = (0.0, [])  # lag is cached for 10 s; before the fan-out no group had committed
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("notify_deliveries_total", channel="push", category="goal-alerts", outcome="sent") == done.sent
    assert delta("notify_deliveries_total", channel="push", category="goal-alerts", outcome="skipped") == done.skipped
    assert delta("notify_provider_request_seconds_count", provider="fake-push") == provider.stats()["requests"]
    # The accept-to-provider latency is observed once per batch, not per recipient: 3,000 fans are one batch.
    assert delta("notify_accept_to_provider_seconds_count", priority="normal", channel="push") == 1
    for dependency in ("postgres", "redis", "kafka"):
        assert after[f'notify_dependency_up{{dependency="{dependency}"}}'] == 1
    assert 'notify_celery_queue_depth{queue="send.normal"}' in after
    assert any(k.startswith("notify_consumer_lag{") for k in after)


@pytest.mark.django_db(transaction=True)
def test_otp_latency_from_acceptance_to_the_provider(stack, provider, client):
    from apps.audience.models import Device, Recipient
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    recipient = Recipient.objects.create(external_id=f"otp-{uuid.uuid4().hex[:8]}")
    Device.objects.create(recipient=recipient, platform="fake", token=f"fake:{recipient.pk:010d}:otp")
    before = scrape(client)
    started = time.time()
    notification = notify(category="security", audience={"recipients": [recipient.pk]}, channels=["push"],
                          title="Your code", body="123456", idempotency_key=f"t-{uuid.uuid4()}")
    assert completed(notification.pk).sent == 1
    elapsed = time.time() - started
    after = scrape(client)
    labels = '{channel="push",priority="high"}'
    assert after[f"notify_accept_to_provider_seconds_count{labels}"] - before.get(
        f"notify_accept_to_provider_seconds_count{labels}", 0) == 1
    latency = after[f"notify_accept_to_provider_seconds_sum{labels}"] - before.get(
        f"notify_accept_to_provider_seconds_sum{labels}", 0)
    assert 0 < latency < elapsed, (latency, elapsed)
    inf = 'notify_accept_to_provider_seconds_bucket{channel="push",le="+Inf",priority="high"}'
    assert after[inf] - before.get(inf, 0) == 1


@pytest.mark.django_db(transaction=True)
def test_lag_rises_while_the_bridges_are_stopped_and_drains_after(stack, provider, crowd):
    """Four batches of 5,000 on the batch topic (a one-batch audience would skip it)."""
    group = next(g for g in bridge_groups() if g.endswith("bridge.send.normal"))
    topics = bridge_groups()[group]
    # Tansu lists no groups, so a group's lag is read from its committed offsets: let it commit once first
    # (run alone, or first in its test process, this module had no fan-out through the bridge before).
    warm = notify(category="goal-alerts", audience={"topic": CROWD_TOPIC}, channels=["push"], title="warm",
                  idempotency_key=f"t-{uuid.uuid4()}")
    completed(warm.pk, timeout=90)
    stack.kill("bridge-send-normal-0")
    stack.kill("bridge-send-normal-1")
    try:
        notification = notify(category="goal-alerts", audience={"topic": CROWD_TOPIC}, channels=["push"],
                              title="lagging", idempotency_key=f"t-{uuid.uuid4()}")
        lag = wait_until(lambda: sum(r.lag for r in group_lag(group, topics)), timeout=30, message="lag to rise")
        assert lag >= 1
        out = __import__("io").StringIO()
        call_command("kafka_lag", "--group", group, "--advise", stdout=out)
        assert "(total)" in out.getvalue() and "consumer(s)" in out.getvalue()
    finally:
        stack.start_bridge("bridge-send-normal-0", "send", "normal")
        stack.start_bridge("bridge-send-normal-1", "send", "normal")
    completed(notification.pk, timeout=90)
    wait_until(lambda: sum(r.lag for r in group_lag(group, topics)) == 0, timeout=30, message="lag to drain")


def test_kafka_lag_on_a_group_that_does_not_exist(broker):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("kafka_lag", "--group", "no-such-group", "--topic", "notify.events")


@pytest.fixture
def throwaway_redis():
    port = __import__("apps.streaming.local_broker", fromlist=["free_port"]).free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0
               and True, timeout=10, message="throwaway redis")
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def first_line(process: subprocess.Popen, timeout: float) -> str:
    """The process's first line of output, or what it wrote to stderr if none came in time (it is then killed)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(timeout):
            return process.stdout.readline()
    process.kill()
    return f"no line in {timeout}s; stderr: {process.communicate()[1][-2000:]}"


@pytest.mark.django_db
def test_readiness_names_redis_when_it_stops(client, broker, throwaway_redis):
    process, url = throwaway_redis
    with override_settings(REDIS_URL=url, CELERY_BROKER_URL=url):
        assert client.get("/readyz").json()["status"] == "ready"
        process.kill()
        process.wait()
        answer = client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["down"] == ["redis"]
        assert scrape(client)['notify_dependency_up{dependency="redis"}'] == 0  # /metrics reports, never raises
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_no_kafka_configured_is_a_dependency_down_not_an_error(client, monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with override_settings(KAFKA_BOOTSTRAP_SERVERS="", VAR_DIR=tmp_path):  # no broker recorded there either
        samples = scrape(client)
        ready = client.get("/readyz")
    assert samples['notify_dependency_up{dependency="kafka"}'] == 0
    assert samples['notify_dependency_up{dependency="postgres"}'] == 1
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] == "not configured"


def test_bridge_exits_non_zero_when_the_broker_stays_gone(django_db_setup):
    from apps.core.redis_client import client
    from apps.harness.processes import database_url
    from apps.streaming.local_broker import start_tansu

    tansu, servers = start_tansu()
    run_id = f"g{uuid.uuid4().hex[:6]}"
    # The test database: the development one need not exist (a fresh machine), and the bridge would wait for it.
    bridge = subprocess.Popen([sys.executable, "manage.py", "run_bridge", "--role", "events", "--grace-seconds", "3"],
                              env={**__import__("os").environ, "KAFKA_BOOTSTRAP_SERVERS": servers,
                                   "DATABASE_URL": database_url(), "NOTIFY_RUN_ID": run_id, "PYTHONUNBUFFERED": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Gone once the bridge consumes: a broker down when it starts is waited for instead (test_start_up_waiting).
    consuming = first_line(bridge, timeout=60)
    assert "consuming" in consuming, consuming
    time.sleep(1)
    tansu.kill()
    tansu.wait()
    try:
        _, stderr = bridge.communicate(timeout=40)
    finally:
        bridge.kill()
        for key in client().scan_iter(match=f"notify:{run_id}:*"):  # the bridge's own keys (its epoch)
            client().delete(key)
    assert bridge.returncode == 1
    assert "unreachable for more than 3s" in stderr


def test_json_log_lines_carry_ids_and_no_contact_details():
    formatter = JsonFormatter()
    with log_context(42, "push:1:7.0"):
        record = logging.LogRecord("apps.x", logging.WARNING, __file__, 1, "refused %s and %s", (
            "fan000000042@example.test", "+447700900123"), None)
        ContextFilter().filter(record)
        line = json.loads(formatter.format(record))
    assert line["notification_id"] == 42 and line["batch_id"] == "push:1:7.0"
    assert "example.test" not in line["message"] and "+4477" not in line["message"]


@pytest.mark.django_db(transaction=True)
def test_worker_logs_of_a_failing_fan_out_hold_no_contact_details(stack, provider, fans):
    logs = sorted(Path(stack.log_dir).glob("*.log"))
    offsets = {path: path.stat().st_size for path in logs}
    provider.reset(Faults(fail_invalid=0.05, fail_5xx=0.3))
    notification = notify(category="goal-alerts", audience={"topic": "test-fans"}, channels=["push", "email", "sms"],
                          title="logs", idempotency_key=f"t-{uuid.uuid4()}")
    completed(notification.pk, timeout=120)
    written = ""
    for path in logs:
        with open(path, "rb") as file:
            file.seek(offsets[path])
            written += file.read().decode(errors="replace")
    assert not re.search(r"@example\.test|\+4477\d|fake:\d{10}:", written), written[:2000]
    assert "logs" not in re.findall(r"title\W+(\w+)", written)
