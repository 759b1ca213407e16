"""A process whose dependency is down when it starts waits for it and says so in its health check, rather
than exiting (and crash-looping under docker-compose's restart policy).

Web, a Celery worker, beat and a bridge start, in production mode, while PostgreSQL, Redis and Kafka are
all "down": nothing listens yet on the ports they are given. They must stay alive, log one line per
dependency naming it (no URL), and their health checks (as docker-compose runs them) must fail naming what
is missing. Then PostgreSQL and Redis appear on those ports (TCP forwarders to the real ones) and an
embedded Tansu starts on the Kafka port: every health check passes, each process logs that the dependency
is back, and an OTP posted to web's HTTP API is delivered by that worker through that bridge."""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

from tests import compose
from tests.conftest import wait_until
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
DEPENDENCIES = ("postgres", "redis", "kafka")


def _readiness(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _health_check(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def ports():
    from apps.streaming.local_broker import free_port

    return {name: free_port() for name in ("postgres", "redis", "kafka", "web", "worker", "bridge")}


def test_processes_wait_for_dependencies_and_report_them(transactional_db, ports, tmp_path):
    from apps.audience.models import Device, Recipient
    from apps.delivery.models import ApiKey, ApiScope, Delivery, DeliveryStatus
    from apps.harness.fake_server import FakeProviderControl
    from apps.harness.processes import Stack
    from apps.preferences.defaults import ensure_default_categories
    from apps.streaming.local_broker import start_tansu

    document = compose.interpolate(compose.load_yaml(compose.COMPOSE_FILE),
                                   {"PUBLIC_BASE_URL": "https://notify.example.test"})
    services = document["services"]
    session_provider = settings.FAKE_PROVIDER_URL
    stack = Stack()
    fake_url = stack.start_fake_provider()
    prefix = f"w{uuid.uuid4().hex[:6]}"
    database = settings.DATABASES["default"]
    redis = urlparse(settings.REDIS_URL)
    user = database.get("USER") or "postgres"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
        "HOSTNAME": socket.gethostname(), "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "notifications_project.settings",
        "NOTIFY_DEVELOPMENT": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PUBLIC_BASE_URL": "https://notify.example.test", "DATABASE_CONN_MAX_AGE": "0",
        "DATABASE_URL": f"postgres://{user}@127.0.0.1:{ports['postgres']}/{database['NAME']}",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}{redis.path or '/0'}",
        "REDIS_KEY_PREFIX": f"{settings.REDIS_KEY_PREFIX}{prefix}:",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['kafka']}", "KAFKA_TOPIC_PREFIX": f"{prefix}.",
        "KAFKA_PARTITIONS": "4", "FAKE_PROVIDER_URL": fake_url, "STATIC_ROOT": str(tmp_path / "static"),
    }
    stack.env = env
    for name in ("web", "worker", "bridge", "beat"):
        (tmp_path / f"prometheus-{name}").mkdir()

    def spawn(name: str, argv: list[str], **extra: str) -> None:
        stack.env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{name}"), **extra}
        stack.spawn(f"{prefix}-{name}", argv)

    def check_env(name: str) -> dict:
        return {**env, "METRICS_PORT": str(ports[name])} if name in ("worker", "bridge") else env

    def log(name: str) -> str:
        return (stack.log_dir / f"{prefix}-{name}.log").read_text(errors="replace")

    # The services' own commands and health checks, from docker-compose.yml.
    python = [sys.executable, "-m"]
    worker_argv = compose.command_argv(services["worker-high"]["command"])
    worker_argv[worker_argv.index("-c") + 1] = "2"
    checks = {
        "web": [sys.executable, *compose.healthcheck_argv(services["web"])[1:]],
        "bridge": [sys.executable, *compose.healthcheck_argv(services["bridge-events"])[1:]],
        "beat": [sys.executable, *compose.healthcheck_argv(services["beat"])[1:]],
    }
    checks["web"] = [part.replace(":8000", f":{ports['web']}") for part in checks["web"]]
    worker_check = compose.healthcheck_argv(services["worker-high"])  # sh -c "probe && celery inspect ping"
    worker_check = [*worker_check[:2], worker_check[2].replace("python ", f"{sys.executable} ", 1)
                    .replace("celery ", f"{sys.executable} -m celery ", 1)]
    proxies = [TcpProxy(ports["postgres"], (database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432))),
               TcpProxy(ports["redis"], (redis.hostname, redis.port or 6379))]
    tansu = None
    try:
        spawn("web", [sys.executable, "-m", *compose.command_argv(services["web"]["command"])[:5],
                      "-b", f"127.0.0.1:{ports['web']}", "-w", "1"])
        spawn("worker", python + worker_argv, METRICS_PORT=str(ports["worker"]))
        spawn("bridge", [sys.executable, *compose.command_argv(services["bridge-events"]["command"])[1:]],
              METRICS_PORT=str(ports["bridge"]))
        spawn("beat", python + compose.command_argv(services["beat"]["command"]))

        # Down: every process stays up, waits, and its health check names what is missing.
        bridge_ready, worker_ready = (f"http://127.0.0.1:{ports[name]}/readyz" for name in ("bridge", "worker"))
        wait_until(lambda: _answers(bridge_ready) and _answers(worker_ready), 60, 0.5, "the readiness ports")
        time.sleep(8)  # several backoff rounds
        assert all(process.poll() is None for process in stack.processes.values()), _tails(log)
        assert _readiness(bridge_ready) == (503, {"status": "waiting for dependencies", "down": list(
            sorted(DEPENDENCIES)), "checks": {"kafka": "unreachable", "redis": "ConnectionError",
                                              "postgres": "OperationalError"}})
        status, body = _readiness(worker_ready)
        assert status == 503 and body["down"] == ["postgres", "redis"], body
        status, body = _readiness(f"http://127.0.0.1:{ports['web']}/readyz")
        assert status == 503 and body["down"] == sorted(DEPENDENCIES), body
        for name in ("web", "bridge", "beat"):
            failed = _health_check(checks[name], check_env(name))
            assert failed.returncode == 1, (name, failed.stdout, failed.stderr)
            assert "postgres" in failed.stdout + failed.stderr and "redis" in failed.stdout + failed.stderr, name
        failed = _health_check(worker_check, check_env("worker"))
        assert failed.returncode != 0 and '"down": ["postgres", "redis"]' in failed.stdout, failed
        for name, waits_for in (("worker", ("postgres", "redis")), ("bridge", DEPENDENCIES),
                                ("beat", ("postgres", "redis"))):
            text = log(name)
            for dependency in waits_for:
                assert len(re.findall(rf"waiting for {dependency} \(", text)) == 1, (name, dependency, text[-3000:])
            waiting_lines = [line for line in text.splitlines() if "waiting for" in line]
            assert not any("://" in line or str(ports["postgres"]) in line for line in waiting_lines), waiting_lines

        # Up: the dependencies appear where the processes look for them.
        for proxy in proxies:
            proxy.start()
        tansu, _ = start_tansu(ports["kafka"], log_path=stack.log_dir / f"{prefix}-tansu.log")
        for name, check in (*checks.items(), ("worker", worker_check)):
            wait_until(lambda: _health_check(check, check_env(name)).returncode == 0, 90, 1,  # noqa: B023
                       f"{name}'s health check\n{_tails(log)}")
        for name, waits_for in (("worker", ("postgres", "redis")), ("bridge", DEPENDENCIES),
                                ("beat", ("postgres", "redis"))):
            for dependency in waits_for:
                assert len(re.findall(rf"{dependency} is back after", log(name))) == 1, (name, dependency)
        assert all(process.poll() is None for process in stack.processes.values()), _tails(log)

        # And they work: an OTP through web's API, the bridge and the worker, to the provider.
        ensure_default_categories()
        token = secrets.token_urlsafe(24)
        ApiKey.objects.create(name=prefix, token_sha256=ApiKey.hash(token), scopes=list(ApiScope.values))
        recipient = Recipient.objects.create(external_id=f"wait-{prefix}")
        Device.objects.create(recipient=recipient, platform="fake", token=f"fake:{recipient.pk:010d}:wait")
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['web']}/api/notifications", headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": prefix},
            data=json.dumps({"category": "security", "audience": {"recipients": [recipient.pk]},
                             "channels": ["push"], "title": "Your code", "body": "123456"}).encode())
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202
        sent = Delivery.objects.filter(recipient_id=recipient.pk, status=DeliveryStatus.SENT)
        wait_until(sent.exists, 60, 0.3, f"the OTP's delivery\n{_tails(log)}")
        assert FakeProviderControl(fake_url).stats()["unique"] == 1
    finally:
        stack.stop()
        if tansu is not None:
            tansu.kill()
            tansu.wait()
        for proxy in proxies:
            proxy.stop()
        settings.FAKE_PROVIDER_URL = session_provider
        from apps.core.redis_client import client

        for key in client().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}{prefix}:*", count=10_000):
            client().delete(key)


def _answers(url: str) -> bool:
    try:
        _readiness(url)
        return True
    except OSError:
        return False


def _tails(log) -> str:  # noqa: ANN001
    parts = []
    for name in ("web", "worker", "bridge", "beat"):
        try:
            parts.append(f"--- {name}\n{log(name)[-1500:]}")
        except OSError:
            pass
    return "\n".join(parts)
