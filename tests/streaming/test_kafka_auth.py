"""Kafka authentication (issue 16): every client's security settings come from env through one place
(apps/streaming/security.py), the password from a secrets file and never into a log line; docker-compose
runs SASL on every broker listener with ACLs, and its two scripts, executed here against stand-ins for
the Kafka tools, create the users and grant another service's user only writes to notify.events.

The embedded Tansu 0.6 cannot take part: with --authentication its SASL handshake fails for PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 alike (NoSharedMechanism), so no authenticated connection is tested here
(README "Kafka authentication")."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests import compose

ROOT = compose.ROOT
KAFKA_DIR = ROOT / "deploy" / "kafka"


def run_python(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "NOTIFY_DEVELOPMENT": "1", "LOG_LEVEL": "DEBUG",
            "DJANGO_SETTINGS_MODULE": "notifications_project.settings"}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                          capture_output=True, text=True, env={**base, **env}, timeout=timeout)


@pytest.fixture
def password_file(tmp_path: Path) -> tuple[Path, str]:
    password = "pw-" + secrets.token_hex(16)
    path = tmp_path / "kafka_notify_password"
    path.write_text(password + "\n")
    return path, password


def test_the_client_config_built_from_env_carries_the_sasl_settings(password_file):
    path, password = password_file
    done = run_python("""
import json
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from apps.streaming.client import base_config
from apps.streaming.consumer import make_consumer
from apps.streaming.security import shown
config = base_config()
Producer(config); AdminClient(config); make_consumer("auth-probe")  # librdkafka takes every setting
import os
same = config["sasl.password"] == open(os.environ["KAFKA_SASL_PASSWORD_FILE"]).read().strip()
print(json.dumps({"shown": shown(config), "password_is_the_files": same}))
""", {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092", "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                  "KAFKA_SASL_USERNAME": "notify", "KAFKA_SASL_PASSWORD_FILE": str(path)})
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["password_is_the_files"] is True
    assert answer["shown"] == {"bootstrap.servers": "kafka-1:9092", "client.id": "notifications",
                               "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                               "sasl.username": "notify", "sasl.password": "***"}
    assert password not in done.stdout + done.stderr


def test_a_local_run_connects_in_plain(settings):
    from apps.streaming.security import security_config

    settings.KAFKA_SECURITY_PROTOCOL = "PLAINTEXT"
    assert security_config() == {"security.protocol": "PLAINTEXT"}
    settings.KAFKA_SECURITY_PROTOCOL, settings.KAFKA_SSL_CA_LOCATION = "SASL_SSL", "/etc/ssl/kafka-ca.pem"
    settings.KAFKA_SASL_USERNAME, settings.KAFKA_SASL_PASSWORD = "notify", "x"
    assert security_config()["ssl.ca.location"] == "/etc/ssl/kafka-ca.pem"


def test_the_password_never_reaches_the_logs(broker, password_file):
    """Real clients with librdkafka's own debug output on, against a broker that refuses the handshake
    (the embedded Tansu): every line of ours and of librdkafka's is read for the password."""
    path, password = password_file
    done = run_python("""
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from confluent_kafka import Producer
from apps.streaming.client import BrokerUnavailable, EventProducer, base_config, check_broker
try:
    check_broker(timeout=2)
except BrokerUnavailable as exc:
    logging.getLogger("probe").error("as the probe says: %s", exc)
producer = Producer({**base_config(), "debug": "conf,security,broker", "logger": logging.getLogger("librdkafka")})
producer.produce("notify.events", b"{}")
print("unsent:", producer.flush(3))
""", {"KAFKA_BOOTSTRAP_SERVERS": broker, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "KAFKA_SASL_USERNAME": "notify", "KAFKA_SASL_PASSWORD_FILE": str(path)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "sasl" in output.lower() and "unsent: 1" in output, output[-3000:]  # it tried, and was refused
    assert password not in output


@pytest.mark.parametrize("env, line", [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "notify"},
     "configuration error: KAFKA_SASL_PASSWORD: expected a value with KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_PASSWORD": "hunter2"},
     "configuration error: KAFKA_SASL_USERNAME: expected a value"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAIN", "KAFKA_SASL_PASSWORD": "hunter2"},
     "configuration error: KAFKA_SECURITY_PROTOCOL: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "notify",
      "KAFKA_SASL_PASSWORD": "hunter2"}, "configuration error: KAFKA_SASL_MECHANISM: expected SCRAM-SHA-512"),
])
def test_incomplete_kafka_credentials_stop_start_up_in_one_line(env, line):
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "NOTIFY_DEVELOPMENT": "1", **env}, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith(line), done.stderr
    assert "hunter2" not in done.stderr + done.stdout


# --- docker-compose ---

@pytest.fixture(scope="module")
def document() -> dict:
    from tests.notifications_project.test_compose_topology import VARIABLES

    return compose.interpolate(compose.load_yaml(compose.COMPOSE_FILE), {**VARIABLES, "FAKE_PROVIDER_URL": ""})


def test_every_broker_listener_authenticates_and_what_no_acl_allows_is_denied(document):
    brokers = {name: spec for name, spec in document["services"].items()
               if "KAFKA_PROCESS_ROLES" in spec.get("environment", {})}
    assert len(brokers) == 3
    for name, spec in brokers.items():
        env = spec["environment"]
        protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        listeners = [item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")]
        assert all(protocols[listener].startswith("SASL_") for listener in listeners), name
        assert env["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert set(env["KAFKA_SUPER_USERS"].split(";")) == {"User:broker", "User:admin"}
        assert all(a.split("://")[0] in protocols for a in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert spec["command"] == ["/opt/notify-kafka/broker.sh"] and "--command-config" in " ".join(
            spec["healthcheck"]["test"])
        assert set(spec["secrets"]) == {"kafka_broker_password", "kafka_admin_password"}
    users = document["services"]["kafka-users"]
    assert users["command"] == ["/opt/notify-kafka/kafka-users.sh"]
    assert "kafka_producers" in users["secrets"] and "kafka_notify_password" in users["secrets"]
    for name in ("kafka_broker_password", "kafka_admin_password", "kafka_notify_password", "kafka_producers"):
        assert document["secrets"][name]["file"] == f"./deploy/secrets/{name}"


def test_every_application_service_connects_as_the_platforms_user(document):
    for name, spec in compose.application_services(document).items():
        env = spec["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == "notify" and "KAFKA_SASL_PASSWORD" not in env, name
        assert env["KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka_notify_password"
        assert "kafka_notify_password" in spec["secrets"], name
        assert spec["depends_on"]["kafka-users"] == {"condition": "service_completed_successfully"}, name


def stub_tools(tmp_path: Path) -> Path:
    """kafka-configs.sh and kafka-acls.sh that record their arguments and the files they were given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-configs.sh", "kafka-acls.sh"):
        script = bin_dir / tool
        script.write_text(f"""#!/bin/sh
printf '%s' {tool} >> "$CALLS"
for arg in "$@"; do printf '\\t%s' "$arg" >> "$CALLS"; done
echo >> "$CALLS"
while [ $# -gt 0 ]; do
  case $1 in --add-config-file|--command-config) cat "$2" >> "$FILES"; echo >> "$FILES" ;; esac
  shift
done
""")
        script.chmod(0o755)
    return bin_dir


def test_kafka_users_gives_another_service_writes_to_notify_events_only(tmp_path):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    passwords = {name: secrets.token_hex(12) for name in ("admin", "notify", "orders", "billing")}
    (secrets_dir / "kafka_admin_password").write_text(passwords["admin"])
    (secrets_dir / "kafka_notify_password").write_text(passwords["notify"])
    (secrets_dir / "kafka_producers").write_text(
        f"# services that publish events\norders {passwords['orders']}\n\nbilling {passwords['billing']}\n")
    calls, files = tmp_path / "calls", tmp_path / "files"
    done = subprocess.run(["sh", str(KAFKA_DIR / "kafka-users.sh")], capture_output=True, text=True, timeout=30, env={
        "PATH": os.environ["PATH"], "SECRETS_DIR": str(secrets_dir), "KAFKA_BIN": str(stub_tools(tmp_path)),
        "CALLS": str(calls), "FILES": str(files)})
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in calls.read_text().splitlines()]
    argv = "\n".join(" ".join(line) for line in lines)
    assert not any(password in argv + done.stdout + done.stderr for password in passwords.values())
    users = [line[line.index("--entity-name") + 1] for line in lines if line[0] == "kafka-configs.sh"]
    assert users == ["notify", "orders", "billing"]
    for password in ("notify", "orders", "billing"):  # each SCRAM password went through a file
        assert f"SCRAM-SHA-512=[password={passwords[password]}]" in files.read_text()

    def grants(principal: str) -> list[list[str]]:
        return [line[line.index("--allow-principal") + 2:] for line in lines
                if line[0] == "kafka-acls.sh" and line[line.index("--allow-principal") + 1] == principal]

    for producer in ("orders", "billing"):
        assert grants(f"User:{producer}") == [
            ["--operation", "Write", "--operation", "Describe", "--topic", "notify.events"]]
    platform = grants("User:notify")
    assert ["--operation", "All", "--topic", "notify.", "--resource-pattern-type", "prefixed"] in platform
    assert ["--operation", "All", "--group", "bridge.", "--resource-pattern-type", "prefixed"] in platform


def test_the_broker_start_writes_its_jaas_file_and_prints_no_secret(tmp_path):
    secrets_dir, auth_dir = tmp_path / "secrets", tmp_path / "auth"
    secrets_dir.mkdir()
    broker, admin = secrets.token_hex(12), secrets.token_hex(12)
    (secrets_dir / "kafka_broker_password").write_text(broker + "\n")
    (secrets_dir / "kafka_admin_password").write_text(admin)
    run = tmp_path / "run"  # stands in for the image's /etc/kafka/docker/run
    run.write_text('#!/bin/sh\necho "started with $KAFKA_OPTS"\n')
    run.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "SECRETS_DIR": str(secrets_dir), "KAFKA_AUTH_DIR": str(auth_dir),
           "KAFKA_RUN": str(run), "KAFKA_OPTS": "-Xmx1g"}
    done = subprocess.run(["sh", str(KAFKA_DIR / "broker.sh")], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"started with -Djava.security.auth.login.config={auth_dir}/jaas.conf -Xmx1g"
    assert broker not in done.stdout + done.stderr and admin not in done.stdout + done.stderr
    jaas = (auth_dir / "jaas.conf").read_text()
    for section in ("broker.KafkaServer", "controller.KafkaServer", "client.KafkaServer"):
        assert section in jaas
    assert f'user_admin="{admin}"' in jaas and f'password="{broker}"' in jaas and "ScramLoginModule" in jaas
    assert f'username="admin" password="{admin}"' in (auth_dir / "admin.properties").read_text()
    assert oct((auth_dir / "jaas.conf").stat().st_mode & 0o777) == "0o600"
    (secrets_dir / "kafka_admin_password").write_text('a"b')  # would break out of the JAAS quotes
    refused = subprocess.run(["sh", str(KAFKA_DIR / "broker.sh")], capture_output=True, text=True, timeout=30, env=env)
    assert refused.returncode == 1 and "kafka_admin_password must hold" in refused.stderr
    assert 'a"b' not in refused.stderr
