"""Attachments in S3: moto in server mode on 127.0.0.1, reached by the real boto3 client through
django-storages; a small file goes as a MIME part read once per provider call, a large one as a signed
link that redirects to a presigned URL, and an unreachable S3 is a 503 or a transient failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from django.test import override_settings

from apps.attachments.models import Attachment
from apps.streaming.local_broker import free_port, wait_for_port
from tests.attachments.support import BASE_STORAGES, PDF, auth, fans, get, mails_to, send_through_api, upload
from tests.conftest import wait_until

BUCKET = "notify-attachments"


def s3_storages(endpoint: str) -> dict:
    return {**BASE_STORAGES, "attachments": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                "bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1",
                "access_key": "test-key", "secret_key": "test-secret", "addressing_style": "path",
                "signature_version": "s3v4", "default_acl": None, "file_overwrite": False}}}


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """A local S3-compatible server: moto in server mode, its request log kept to count the GETs it answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test-key",
                     aws_secret_access_key="test-secret").create_bucket(Bucket=BUCKET)
        yield {"endpoint": endpoint, "log": log}
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def s3(moto_server):
    with override_settings(ATTACHMENT_STORAGE="s3", STORAGES=s3_storages(moto_server["endpoint"])):
        yield moto_server


def s3_objects(moto: dict) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=moto["endpoint"], region_name="us-east-1",
                          aws_access_key_id="test-key", aws_secret_access_key="test-secret")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def test_upload_to_local_s3_then_each_email_carries_it_as_a_mime_part_read_once_per_call(client, key, s3, smtp,
                                                                                        broker, settings):
    answer = upload(client, key, PDF)
    assert answer.status_code == 201, answer.content
    made = answer.json()
    assert (made["filename"], made["content_type"], made["size"], made["inline"]) == \
        ("report.pdf", "application/pdf", len(PDF), True)
    stored = Attachment.objects.get(pk=made["id"])
    assert s3_objects(s3)[stored.storage_key] == PDF  # in the bucket, through boto3 and the S3 protocol

    settings.PROVIDER_CALL_SIZE = 20  # 50 recipients: three provider calls
    recipients = fans(50)
    s3["log"].write_bytes(b"")
    send_through_api(client, key, recipients, [made["id"]])
    mails = mails_to(smtp, recipients)
    assert len(mails) == 50
    for mail in mails:
        [part] = list(mail.iter_attachments())
        assert part.get_filename() == "report.pdf" and part.get_content_type() == "application/pdf"
        assert part.get_content() == PDF
        assert mail.get_body(("plain",)).get_content().startswith("Attached.")
    # The file was read from S3 once per provider call (3), not once per recipient (50).
    fetches = wait_until(lambda: re.findall(rf'"GET /{BUCKET}/{stored.storage_key}\b', s3["log"].read_text()),
                         timeout=10, message="the server's log of the GETs")
    time.sleep(0.5)
    fetches = re.findall(rf'"GET /{BUCKET}/{stored.storage_key}\b', s3["log"].read_text())
    assert len(fetches) == 3, fetches


def test_a_large_file_on_s3_goes_as_a_signed_link_that_redirects_to_a_presigned_url(client, key, s3, smtp, broker,
                                                                                   settings, live_server):
    settings.ATTACHMENT_INLINE_MAX_BYTES = 1024
    settings.PUBLIC_BASE_URL = live_server.url
    big = bytes(range(256)) * 40  # 10 KB
    made = upload(client, key, big, "season.zip", "application/zip").json()
    assert made["inline"] is False
    [recipient] = fans(1)
    send_through_api(client, key, [recipient], [made["id"]])
    [mail] = mails_to(smtp, [recipient])
    assert list(mail.iter_attachments()) == []
    text = mail.get_body(("plain",)).get_content()
    [url] = re.findall(r"- season\.zip \(10\.0 KB\): (\S+)", text)
    assert url.startswith(live_server.url + "/attachments/")
    status, data, headers = get(url)  # our signed link -> a presigned URL on the S3 server -> the file
    assert status == 200 and data == big
    assert "season.zip" in headers.get("Content-Disposition", "")


def test_an_unreachable_s3_server_is_a_503_and_an_unreadable_file_a_transient_failure(client, key, s3, smtp, broker):
    made = upload(client, key, PDF).json()  # stored while the server was up
    [recipient] = fans(1)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storages = s3_storages(closed)
    storages["attachments"]["OPTIONS"]["client_config"] = Config(retries={"max_attempts": 1}, connect_timeout=2)
    with override_settings(STORAGES=storages):
        answer = upload(client, key, PDF)
        assert answer.status_code == 503 and "storage" in answer.json()["error"]
        from apps.delivery.sender import send_batch

        body = {"category": "security", "channels": ["email"], "audience": {"recipients": [recipient.pk]},
                "body": "Attached.", "attachments": [made["id"]]}
        created = client.post("/api/notifications", data=json.dumps(body), content_type="application/json",
                              **auth(key))
        assert created.status_code == 202, created.content
        report = send_batch(created.json()["id"], "email", f"email:test:{uuid.uuid4().hex}", [recipient.pk],
                            priority="high")
    assert report.retry_ids == [recipient.pk] and not mails_to(smtp, [recipient])  # tried again later, not lost


def test_through_the_real_pipeline_a_file_on_s3_reaches_the_mailbox(client, key, s3, smtp, broker):
    """The HTTP API, Kafka, the bridges and a Celery send worker (child processes, reading the file from the S3
    server with boto3 themselves), the SMTP transport, the local mail server."""
    from apps.harness.processes import Stack
    from apps.streaming.client import ensure_topics
    from tests.delivery.test_pipeline import completed

    made = upload(client, key, PDF, "ticket.pdf").json()
    # its own Redis prefix (so Celery queues) and topics: the session's stack, if this worker started it, must not
    # take these batches (it has no mail server or S3 settings)
    stack = Stack()
    prefixes = stack.isolate("s3")
    stack.env.update({"KAFKA_BOOTSTRAP_SERVERS": broker,
                      "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                      "EMAIL_PORT": str(smtp.port), "DEFAULT_FROM_EMAIL": "club@club.example",
                      "NOTIFY_ATTACHMENT_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": BUCKET,
                      "AWS_S3_ENDPOINT_URL": s3["endpoint"], "AWS_S3_REGION_NAME": "us-east-1",
                      "AWS_S3_ADDRESSING_STYLE": "path", "AWS_ACCESS_KEY_ID": "test-key",
                      "AWS_SECRET_ACCESS_KEY": "test-secret"})
    try:
        with override_settings(KAFKA_TOPIC_PREFIX=prefixes["KAFKA_TOPIC_PREFIX"]):
            ensure_topics()
            stack.start_pipeline(send_workers=1, send_concurrency=1, priorities=("high",), high_concurrency=2)
            recipients = fans(3)
            body = {"category": "security", "channels": ["email"], "title": "Your ticket", "body": "Attached.",
                    "audience": {"recipients": [r.pk for r in recipients]}, "attachments": [made["id"]]}
            answer = client.post("/api/notifications", data=json.dumps(body), content_type="application/json",
                                 **auth(key))
        assert answer.status_code == 202, answer.content
        notification = completed(answer.json()["id"], timeout=240)
        assert notification.sent == 3
    finally:
        stack.stop()
    mails = mails_to(smtp, recipients)
    assert len(mails) == 3
    for mail in mails:
        [part] = list(mail.iter_attachments())
        assert part.get_filename() == "ticket.pdf" and part.get_content() == PDF
