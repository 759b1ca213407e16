"""A channel is one spec: a WhatsApp-shaped channel, added in a test settings module with its spec and its
provider module (tests/channel_whatsapp), goes through the real pipeline (notify command, Kafka, bridges,
Celery workers, PostgreSQL) to a local server speaking its API, with no other edit."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.audience.models import Recipient
from apps.delivery.models import Delivery, DeliveryStatus
from apps.harness.processes import BASE_DIR, Stack
from apps.preferences.defaults import ensure_default_categories
from tests.delivery.test_pipeline import completed

pytestmark = pytest.mark.django_db(transaction=True)
SETTINGS = "tests.core.channel_whatsapp.settings"
NOT_ON_WHATSAPP = "+447700900999"


class WhatsAppServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.messages: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: WhatsAppServer

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer test-token" or not self.path.endswith("/messages"):
            return self._answer(401, {"error": {"code": 190, "message": "bad token"}})
        if body["to"] == NOT_ON_WHATSAPP:
            return self._answer(400, {"error": {"code": 131026, "message": "Message undeliverable"}})
        with self.server.lock:
            self.server.messages.append((body["to"], body["text"]["body"]))
            number = len(self.server.messages)
        self._answer(200, {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.{number}"}]})

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def whatsapp_server():
    server = WhatsAppServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def whatsapp_stack(broker, whatsapp_server, tmp_path_factory):
    """A pipeline of its own under the WhatsApp settings: its own Redis prefix (so its own Celery queues) and
    topics, beside the session's stack."""
    stack = Stack(log_dir=tmp_path_factory.mktemp("whatsapp-stack"))
    stack.isolate("wa")
    stack.env.update({"DJANGO_SETTINGS_MODULE": SETTINGS, "KAFKA_BOOTSTRAP_SERVERS": broker,
                      "WHATSAPP_API_BASE": whatsapp_server.url, "WHATSAPP_TOKEN": "test-token"})
    manage(stack, "ensure_topics")
    stack.start_pipeline(send_workers=1, send_concurrency=2)
    yield stack
    stack.stop()


def manage(stack: Stack, *args: str) -> str:
    answer = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=stack.env, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def test_a_channel_added_by_its_spec_alone_delivers_through_the_pipeline(whatsapp_stack, whatsapp_server):
    ensure_default_categories()
    fans = [Recipient.objects.create(external_id=f"wa-{n}", phone=f"+4477009{n:05d}") for n in range(40)]
    no_phone = Recipient.objects.create(external_id="wa-no-phone")
    not_on_whatsapp = Recipient.objects.create(external_id="wa-not-on-it", phone=NOT_ON_WHATSAPP)
    ids = [r.pk for r in [*fans, no_phone, not_on_whatsapp]]

    out = manage(whatsapp_stack, "notify", "--category", "goal-alerts", "--channels", "whatsapp",
                 "--recipients", ",".join(map(str, ids)), "--body", "GOAL! 1-0")
    notification = completed(int(out.split()[1]), timeout=120)

    assert sorted(whatsapp_server.messages) == sorted((r.phone, "GOAL! 1-0") for r in fans)  # each once
    rows = {r.recipient_id: r for r in Delivery.of_notification(notification.pk)}
    assert {rows[r.pk].channel for r in fans} == {"whatsapp"}
    assert all(rows[r.pk].status == DeliveryStatus.SENT and rows[r.pk].provider_message_id.startswith("wamid.")
               for r in fans)
    assert (rows[no_phone.pk].status, rows[no_phone.pk].reason) == (DeliveryStatus.SKIPPED, "no_phone")
    assert rows[not_on_whatsapp.pk].status == DeliveryStatus.FAILED
    assert "131026" in rows[not_on_whatsapp.pk].reason
    assert (notification.sent, notification.failed, notification.skipped) == (40, 1, 1)


def test_the_new_channel_needs_only_a_choices_migration(whatsapp_stack):
    """The channel's new choice alters field choices (no table change); nothing else in the schema moves."""
    planned = manage(whatsapp_stack, "makemigrations", "--dry-run")
    changes = [line.strip() for line in planned.splitlines() if line.strip().startswith(("~", "+", "-"))]
    assert changes and all(line.startswith("~ Alter field") for line in changes), planned
