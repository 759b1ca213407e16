"""What the attachment tests share: a PDF, API calls through the test client, and reading a link."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

from apps.audience.models import Recipient

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"  # binary, 2 KB: a MIME part by default

# The project's storages with attachments elsewhere (a test's own directory, or S3).
BASE_STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                 "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def auth(key: dict) -> dict:
    return {"HTTP_AUTHORIZATION": key["HTTP_AUTHORIZATION"]}


def upload(client, key: dict, data: bytes, filename: str = "report.pdf", content_type: str = "application/pdf"):  # noqa: ANN001, ANN201
    return client.post(f"/api/attachments?filename={filename}", data=data, content_type=content_type, **auth(key))


def fans(count: int) -> list[Recipient]:
    tag = uuid.uuid4().hex[:8]
    return Recipient.objects.bulk_create(Recipient(external_id=f"att-{tag}-{i}", email=f"fan{i}-{tag}@club.example")
                                         for i in range(count))


def send_through_api(client, key: dict, recipients: list[Recipient], attachment_ids: list[int]) -> int:  # noqa: ANN001
    """POST /api/notifications, then its email batch through the real sender and transport in this process."""
    from apps.delivery.sender import send_batch

    body = {"category": "security", "channels": ["email"], "audience": {"recipients": [r.pk for r in recipients]},
            "title": "Your report", "body": "Attached.", "attachments": attachment_ids}
    answer = client.post("/api/notifications", data=json.dumps(body), content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY=f"att-{uuid.uuid4()}", **auth(key))
    assert answer.status_code == 202, answer.content
    notification_id = answer.json()["id"]
    report = send_batch(notification_id, "email", f"email:test:{uuid.uuid4().hex}", [r.pk for r in recipients],
                        priority="high")
    assert report.counts == {"sent": len(recipients)}, report
    return notification_id


def mails_to(smtp, recipients: list[Recipient]) -> list:  # noqa: ANN001
    addresses = {r.email for r in recipients}
    return [m for m in smtp.messages if m["To"] in addresses]


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)
