"""docker-compose.yml is executed, not only written: validated against the Compose Specification,
checked for the production properties it promises, and every application service's command started
with that service's environment as a local process (host names and ports mapped to this machine; the
PostgreSQL, Redis and Kafka images replaced by the local PostgreSQL and Redis and an embedded Tansu).
A notification fired through the web service's HTTP API is delivered, and every health check answers."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

from tests import compose

# What an operator's .env gives the file; the small sizes and Tansu's session timeout are this machine's.
VARIABLES = {"PUBLIC_BASE_URL": "https://notify.example.test", "WEB_WORKERS": "1", "WORKER_DISPATCH_CONCURRENCY": "1",
             "WORKER_HIGH_CONCURRENCY": "2", "WORKER_NORMAL_CONCURRENCY": "1", "WORKER_LOW_CONCURRENCY": "1",
             "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}
NOT_SCRAPED = {"migrate", "beat"}  # a one-shot, and a process with no metrics port


@pytest.fixture(scope="module")
def document() -> dict:
    raw = compose.load_yaml(compose.COMPOSE_FILE)
    assert compose.schema_errors(raw) == []
    return compose.interpolate(raw, {**VARIABLES, "FAKE_PROVIDER_URL": ""})


def test_schema_is_the_compose_specification():
    raw = compose.load_yaml(compose.COMPOSE_FILE)
    raw["services"]["web"]["helthcheck"] = raw["services"]["web"].pop("healthcheck")
    assert any("helthcheck" in error for error in compose.schema_errors(raw))
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        compose.interpolate(compose.load_yaml(compose.COMPOSE_FILE), {})


def test_production_properties(document):
    services = document["services"]
    apps = compose.application_services(document)
    one_shots = {name for name, spec in services.items() if spec.get("restart") == "no"}
    assert one_shots == {"migrate", "kafka-users"}
    missing = [name for name, spec in services.items() if not spec.get("healthcheck") and name not in one_shots]
    assert not missing, "every service but the one-shots migrate and kafka-users has a health check"
    for name, spec in apps.items():
        if name != "migrate":
            assert spec["restart"] == "unless-stopped" and spec["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"}, name
        assert spec["environment"]["KAFKA_REPLICATION_FACTOR"] == "3", name
        assert spec["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
        assert "DJANGO_SECRET_KEY" not in spec["environment"] and spec["secrets"], name
    for name, spec in apps.items():  # a dependency down is named by the health check, not a crash-loop
        command, check = compose.command_argv(spec["command"]), " ".join(spec.get("healthcheck", {}).get("test", []))
        if "worker" in command or "run_bridge" in command:
            assert "apps.monitoring.probe /readyz" in check, name
        elif name == "web":
            assert "apps.monitoring.probe http://127.0.0.1:8000/readyz" in check
        elif "beat" in command:
            assert "check_dependencies" in check and "notifications_project.beat_scheduler" in spec["command"]
    brokers = {name: spec for name, spec in services.items() if "KAFKA_PROCESS_ROLES" in spec.get("environment", {})}
    assert len(brokers) == 3
    volumes = set()
    for spec in brokers.values():
        env = spec["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
        assert (str(env["KAFKA_MIN_INSYNC_REPLICAS"]), str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"])) == ("2", "3")
        (mount,) = [m for m in spec["volumes"] if m.split(":")[1] == env["KAFKA_LOG_DIRS"]]
        volume = mount.split(":")[0]
        assert volume in document["volumes"]
        volumes.add(volume)
    assert len(volumes) == 3 and len({spec["environment"]["KAFKA_NODE_ID"] for spec in brokers.values()}) == 3
    redis = services["redis"]
    data_dir = redis["command"][redis["command"].index("--dir") + 1]
    assert "--appendonly" in redis["command"] and any(v.endswith(f":{data_dir}") for v in redis["volumes"])
    for name, secret in document["secrets"].items():
        assert secret["file"].startswith("./deploy/secrets/"), name


def test_prometheus_scrapes_every_process_and_alerts_are_routed(document):
    deploy = compose.ROOT / "deploy"
    prometheus = compose.load_yaml(deploy / "prometheus.yml")
    targets = {t for job in prometheus["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{name}:{spec['environment']['METRICS_PORT']}"
                for name, spec in compose.application_services(document).items() if name not in NOT_SCRAPED}
    assert targets == expected
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    alertmanager = compose.load_yaml(deploy / "alertmanager.yml")
    receivers = {receiver["name"] for receiver in alertmanager["receivers"]}
    routed = {alertmanager["route"]["receiver"], *(route["receiver"] for route in alertmanager["route"]["routes"])}
    assert routed <= receivers and any('severity="critical"' in r["matchers"] for r in alertmanager["route"]["routes"])
    for rule in compose.load_yaml(deploy / "alerts.yml")["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_grafana_dashboard_uses_the_documented_metrics(document):
    grafana = compose.ROOT / "deploy" / "grafana"
    dashboard = json.loads((grafana / "dashboards" / "notifications.json").read_text())
    provider = compose.load_yaml(grafana / "provisioning" / "dashboards" / "notifications.yml")["providers"][0]
    mounts = dict(volume.split(":")[:2] for volume in document["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for needed in ("throughput per channel", "p50 / p99", "lag per group", "dead letters", "queue depth", "otp"):
        assert needed in titles
    readme = (compose.ROOT / "README.md").read_text()
    used = set(re.findall(r"notify_[a-z_]+", json.dumps(dashboard)))
    assert used and all(name.removesuffix("_bucket") in readme for name in used), used


def test_env_file_documents_every_provider_variable():
    example = (compose.ROOT / "deploy" / "production.env.example").read_text()
    source = (compose.ROOT / "notifications_project" / "provider_settings.py").read_text()
    names = re.findall(r"^((?:FCM|APNS|WEBPUSH|TWILIO|EMAIL|WEBHOOK)_\w+) = env_", source, re.MULTILINE)
    assert len(names) > 20
    for name in [*names, "DEFAULT_FROM_EMAIL", "ANYMAIL_"]:
        if name in ("EMAIL_HOST_PASSWORD", "TWILIO_AUTH_TOKEN"):
            name += "_FILE"  # secrets come from files
        assert f"# {name}" in example, name


def test_benchmark_harness_runs_the_same_queue_groups_and_bridges(document):
    from apps.harness.processes import Stack

    started: list[list[str]] = []
    stack = Stack()
    stack.spawn = lambda name, argv, nice=0: started.append(argv)  # noqa: ARG005
    stack.start_pipeline(priorities=("normal", "high", "low"))

    def shape(argv: list[str]) -> tuple[str, ...]:
        if "worker" in argv:
            return ("worker", argv[argv.index("-Q") + 1], argv[argv.index("-P") + 1] if "-P" in argv else "prefork")
        role = argv[argv.index("--role") + 1]
        return ("bridge", role, argv[argv.index("--priority") + 1] if role == "send" else "")

    services = [compose.command_argv(spec["command"]) for name, spec in
                compose.application_services(document).items() if name not in ("migrate", "web", "beat")]
    assert {shape(argv) for argv in started} == {shape(argv) for argv in services}
    # Every harness (the benchmarks, chaos, the test suite's stack) starts the pipeline through start_pipeline,
    # so the check above covers them all; none starts workers or bridges of its own beside it.
    harnesses = ["apps/harness/benchmark.py", "apps/harness/bench_priority.py", "apps/harness/chaos/runner.py",
                 "tests/conftest.py"]
    for path in harnesses:
        source = (compose.ROOT / path).read_text()
        assert "start_pipeline(" in source and "start_worker(" not in source, path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(url: str, body: dict | None = None, token: str = "", key: str = "") -> tuple[int, dict]:
    headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _healthy(service: compose.LocalService, deadline: float) -> str | None:
    """None once the health check exits 0 (retried as Compose does during start_period), else its output."""
    output = ""
    while time.monotonic() < deadline:
        try:  # a check that outlives its timeout is a failed attempt, as Compose counts it, and is tried again
            done = subprocess.run(service.healthcheck, cwd=compose.ROOT, env=service.env, capture_output=True,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired:
            output = "timed out after 60 s"
            continue
        if done.returncode == 0:
            return None
        output = (done.stdout + done.stderr)[-500:]
        time.sleep(1)
    return output


def test_every_application_service_runs_delivers_and_is_healthy(document, transactional_db, broker, tmp_path):
    from apps.audience.models import Device, Recipient
    from apps.delivery.models import ApiKey, ApiScope
    from apps.harness.fake_server import FakeProviderControl
    from apps.harness.processes import Stack, database_url
    from apps.preferences.defaults import ensure_default_categories
    from apps.streaming.client import delete_topics
    from apps.streaming.topics import all_topics

    session_provider = settings.FAKE_PROVIDER_URL  # start_fake_provider sets it for this process too
    infrastructure = Stack()  # the fake provider stands in for the real ones
    fake_url = infrastructure.start_fake_provider()
    variables = {**VARIABLES, "FAKE_PROVIDER_URL": fake_url}
    document = compose.interpolate(compose.load_yaml(compose.COMPOSE_FILE), variables)
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "providers").mkdir(parents=True)
    (secrets_dir / "database_url").write_text(database_url())
    (secrets_dir / "django_secret_key").write_text(secrets.token_urlsafe(50))
    (secrets_dir / "kafka_notify_password").write_text(secrets.token_hex(16))
    redis = urlparse(settings.REDIS_URL)
    addresses = {"redis:6379": f"{redis.hostname}:{redis.port or 6379}",
                 **{f"kafka-{n}:9092": broker for n in (1, 2, 3)}}
    prefix = f"c{uuid.uuid4().hex[:6]}"  # this test's own Redis keys and topics, apart from the session's stack
    # Tansu stands in for the SASL brokers but cannot authenticate (README "Kafka authentication"): plain
    # connections to it; tests/streaming/test_kafka_auth.py checks the SASL settings the services are given.
    overrides = {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                 "REDIS_KEY_PREFIX": f"{settings.REDIS_KEY_PREFIX}{prefix}:", "PYTHONUNBUFFERED": "1",
                 "KAFKA_TOPIC_PREFIX": f"{settings.KAFKA_TOPIC_PREFIX}{prefix}.", "KAFKA_PARTITIONS": "8"}
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
                "LANG": "C.UTF-8", "HOSTNAME": socket.gethostname()}
    services = {}
    for name, spec in compose.application_services(document).items():
        ports = {9100: _free_port(), **({8000: _free_port()} if name == "web" else {})}
        paths = {"/run/secrets/": f"{secrets_dir}/", "/tmp/prometheus": str(tmp_path / f"prometheus-{name}")}
        services[name] = compose.local_service(name, spec, addresses, paths, ports, base_env, overrides)

    ensure_default_categories()
    token = secrets.token_urlsafe(24)
    ApiKey.objects.create(name="compose", token_sha256=ApiKey.hash(token), scopes=list(ApiScope.values))
    recipient = Recipient.objects.create(external_id=f"compose-{prefix}")
    Device.objects.create(recipient=recipient, platform="fake", token=f"fake:{recipient.pk:010d}:compose")

    log_dir = compose.ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)

    def start(service: compose.LocalService) -> subprocess.Popen:
        log = open(log_dir / f"compose-{service.name}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(service.argv, cwd=compose.ROOT, env=service.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def tails() -> str:
        return "\n".join(f"--- {name}\n" + (log_dir / f"compose-{name}.log").read_text(errors="replace")[-1500:]
                         for name in services)

    running: dict[str, subprocess.Popen] = {}
    try:
        migrate = start(services["migrate"])
        assert migrate.wait(90) == 0, tails()
        running = {name: start(service) for name, service in services.items() if name != "migrate"}
        web = f"http://127.0.0.1:{services['web'].ports[8000]}"
        deadline = time.monotonic() + 180  # fourteen processes starting at once on a shared 2-core host
        with ThreadPoolExecutor(len(running)) as pool:
            health = {name: pool.submit(_healthy, services[name], deadline) for name in running}
            failing = {name: future.result() for name, future in health.items() if future.result() is not None}
        assert not failing, f"health checks failing: {failing}\n{tails()}"
        assert all(process.poll() is None for process in running.values()), tails()

        status, answer = _http(f"{web}/api/notifications", {
            "category": "security", "audience": {"recipients": [recipient.pk]}, "channels": ["push"],
            "title": "Your code", "body": "123456"}, token=token, key=f"compose-{prefix}")
        assert status == 202, answer
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = _http(f"{web}/api/notifications/{answer['id']}", token=token)[1]
            if state["status"] == "completed":
                break
            time.sleep(0.3)
        assert state["status"] == "completed" and state["sent"] == 1, f"{state}\n{tails()}"
        assert FakeProviderControl(fake_url).stats()["unique"] == 1
    finally:
        for process in running.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        infrastructure.stop()
        settings.FAKE_PROVIDER_URL = session_provider
        saved = settings.KAFKA_TOPIC_PREFIX
        settings.KAFKA_TOPIC_PREFIX = overrides["KAFKA_TOPIC_PREFIX"]
        try:
            delete_topics([spec.name for spec in all_topics()])
        finally:
            settings.KAFKA_TOPIC_PREFIX = saved
