"""Email attachments (apps/attachments): uploaded over the HTTP API into the local filesystem and into S3 (moto in
server mode on 127.0.0.1, reached by the real boto3 client through django-storages), then sent by the real sender
and email transport to the local SMTP server: a small file as a MIME part, a large one as a signed link that works
over HTTP and is refused when tampered with or expired. Limits and types are refused with a 4xx naming them, and
fuzzed uploads never get a 500."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from apps.attachments import links
from apps.attachments.models import Attachment
from apps.audience.models import Recipient
from apps.delivery.models import ApiKey, ApiScope
from apps.harness import protocol_servers as servers
from apps.streaming.local_broker import free_port, wait_for_port
from tests.conftest import wait_until

BUCKET = "notify-attachments"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"  # binary, 2 KB: a MIME part by default


def s3_storages(endpoint: str) -> dict:
    return {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            "attachments": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
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


@pytest.fixture
def filesystem(tmp_path):
    storages = {**s3_storages(""), "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                   "OPTIONS": {"location": str(tmp_path / "attachments")}}}
    with override_settings(ATTACHMENT_STORAGE="filesystem", STORAGES=storages):
        yield tmp_path / "attachments"


def s3_objects(moto: dict) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=moto["endpoint"], region_name="us-east-1",
                          aws_access_key_id="test-key", aws_secret_access_key="test-secret")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    from apps.providers import registry

    handler = servers.SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=servers.free_port())
    controller.start()
    registry.reset()
    handler.port = controller.port
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=controller.port, DEFAULT_FROM_EMAIL="club@club.example"):
        yield handler
    registry.reset()
    controller.stop()


@pytest.fixture
def key(transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    token = f"attach-{uuid.uuid4().hex}"
    api_key = ApiKey.objects.create(name=f"attachments-{token[-8:]}", token_sha256=ApiKey.hash(token),
                                    scopes=[ApiScope.SEND, ApiScope.MANAGE_ATTACHMENTS])
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "key": api_key}


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


# --- S3 ---

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


# --- the local filesystem ---

def test_on_the_filesystem_a_large_file_is_a_signed_link_and_a_tampered_or_expired_one_is_refused(
        client, key, filesystem, smtp, broker, settings, live_server):
    settings.ATTACHMENT_INLINE_MAX_BYTES = 1024
    settings.PUBLIC_BASE_URL = live_server.url
    big = b"date,fixture\n" + b"2026-12-05,Arsenal v Chelsea\n" * 200
    made = upload(client, key, big, "fixtures.csv", "text/csv").json()
    stored = Attachment.objects.get(pk=made["id"])
    assert (filesystem / stored.storage_key).read_bytes() == big
    [recipient] = fans(1)
    send_through_api(client, key, [recipient], [made["id"]])
    [mail] = mails_to(smtp, [recipient])
    [url] = re.findall(r"- fixtures\.csv \([\d.]+ KB\): (\S+)", mail.get_body(("plain",)).get_content())
    status, data, headers = get(url)
    assert status == 200 and data == big
    assert headers["Content-Type"].startswith("text/csv") and "fixtures.csv" in headers["Content-Disposition"]
    token = urlparse(url).path.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    status, data, _ = get(f"{live_server.url}/attachments/{tampered}")
    assert status == 400 and b"not valid" in data
    expired = links.download_url(stored.pk, max_age_seconds=60, now=time.time() - 120)
    status, data, _ = get(expired)
    assert status == 410 and b"expired" in data


def test_a_small_file_from_a_template_and_from_notify_goes_as_a_mime_part(client, key, filesystem, smtp, broker):
    from apps.attachments import store
    from apps.content.models import Template
    from apps.delivery.sender import send_batch
    from apps.delivery.service import notify

    template = Template.objects.create(name=f"ticket-{uuid.uuid4().hex[:6]}", email_subject="Your ticket",
                                       email_text="Ticket for {{ match }}", email_html="<p>Ticket for {{ match }}</p>")
    ticket = store.save(_reader(b"BEGIN:VCALENDAR\nEND:VCALENDAR\n"), "match.ics", "text/calendar")
    ticket.templates.add(template)
    extra = upload(client, key, PDF).json()
    [recipient] = fans(1)
    notification = notify(category="security", audience={"recipients": [recipient.pk]}, channels=["email"],
                          template_id=template.pk, context={"match": "Arsenal v Chelsea"}, attachments=[extra["id"]])
    report = send_batch(notification.pk, "email", f"email:test:{uuid.uuid4().hex}", [recipient.pk], priority="high")
    assert report.counts == {"sent": 1}
    [mail] = mails_to(smtp, [recipient])
    assert [(p.get_filename(), p.get_content_type()) for p in mail.iter_attachments()] == \
        [("report.pdf", "application/pdf"), ("match.ics", "text/calendar")]
    assert mail.get_body(("html",)).get_content().startswith("<p>Ticket for Arsenal v Chelsea</p>")


def _reader(data: bytes):  # noqa: ANN202
    chunks = [data, b""]
    return lambda size: chunks.pop(0)


# --- refusals ---

def test_over_the_limit_and_refused_types_get_a_4xx_naming_them(client, key, filesystem, settings):
    settings.ATTACHMENT_MAX_BYTES = 4096
    answer = upload(client, key, b"x" * 4097, "huge.pdf")
    assert answer.status_code == 413 and "huge.pdf" in answer.json()["error"] and "4096" in answer.json()["error"]
    answer = upload(client, key, b"<script>alert(1)</script>", "page.html", "text/html")
    assert answer.status_code == 415 and "'text/html'" in answer.json()["error"]
    assert "page.html" in answer.json()["error"] and answer.json()["field"] == "Content-Type"
    for bad in ("a%0d%0aBcc: x@y", "%22quoted%22.pdf", "", "a" * 201 + ".pdf"):
        answer = upload(client, key, PDF, bad)
        assert answer.status_code == 400 and answer.json()["field"] == "filename", (bad, answer.content)
    assert upload(client, key, b"", "empty.pdf").status_code == 400
    assert not Attachment.objects.exists()
    assert not filesystem.exists() or not any(filesystem.rglob("*"))  # nothing refused was kept
    # a path is dropped: the name is its last part, and the storage key is never the uploader's
    answer = upload(client, key, PDF, "../../etc/passwd.pdf")
    assert answer.status_code == 201 and answer.json()["filename"] == "passwd.pdf"
    assert [p.name for p in filesystem.iterdir()] == [Attachment.objects.get().storage_key]


def test_a_body_is_read_in_chunks_and_refused_as_soon_as_it_passes_the_limit(key, filesystem, settings):
    """A chunked upload (no Content-Length, as ASGI servers pass one on) is cut off at the limit, never read whole."""
    from apps.attachments import rules, store

    settings.ATTACHMENT_MAX_BYTES = 1_000_000
    asked = []

    def endless(size: int) -> bytes:  # a client that keeps sending
        asked.append(size)
        return b"z" * size

    with pytest.raises(rules.Refused) as refused:
        store.save(endless, "stream.txt", "text/plain")
    assert refused.value.status == 413 and "stream.txt" in refused.value.message
    assert sum(asked) <= 1_000_000 + store.CHUNK_BYTES and max(asked) == store.CHUNK_BYTES
    assert not Attachment.objects.exists() and (not filesystem.exists() or not any(filesystem.iterdir()))


def test_a_notification_may_name_only_its_own_keys_attachments(client, key, filesystem, broker):
    mine = upload(client, key, PDF).json()["id"]
    token = f"other-{uuid.uuid4().hex}"
    ApiKey.objects.create(name=f"other-{token[-8:]}", token_sha256=ApiKey.hash(token),
                          scopes=[ApiScope.SEND, ApiScope.MANAGE_ATTACHMENTS])
    [recipient] = fans(1)
    body = {"category": "security", "channels": ["email"], "audience": {"recipients": [recipient.pk]}, "body": "x"}
    for ids, who, field_error in (([mine], token, f"unknown attachment {mine}"), ([mine + 999], None,
                                  f"unknown attachment {mine + 999}"), (["1"], None, "attachment ids")):
        header = f"Bearer {token}" if who else key["HTTP_AUTHORIZATION"]
        answer = client.post("/api/notifications", data=json.dumps({**body, "attachments": ids}),
                             content_type="application/json", HTTP_AUTHORIZATION=header)
        assert answer.status_code == 400 and answer.json()["field"] == "attachments", answer.content
        assert field_error in answer.json()["error"]
    assert client.get(f"/api/attachments/{mine}", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404
    assert client.get(f"/api/attachments/{mine}", **auth(key)).json()["sha256"] == \
        Attachment.objects.get(pk=mine).sha256
    # the same idempotency key with other attachments is a conflict naming them
    again = {**body, "idempotency_key": f"att-{uuid.uuid4()}"}
    first = client.post("/api/notifications", data=json.dumps({**again, "attachments": [mine]}),
                        content_type="application/json", **auth(key))
    assert first.status_code == 202, first.content
    second = client.post("/api/notifications", data=json.dumps(again), content_type="application/json", **auth(key))
    assert second.status_code == 422 and second.json()["differing"] == ["attachments"]


def test_the_admin_uploads_within_the_same_limits(admin_client, filesystem, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.ATTACHMENT_MAX_BYTES = 4096
    answer = admin_client.post("/admin/attachments/attachment/add/",
                               {"upload": SimpleUploadedFile("poster.png", b"\x89PNG\r\n" + b"p" * 100, "image/png")})
    assert answer.status_code == 302, answer.content[:2000]
    poster = Attachment.objects.get()
    assert (poster.filename, poster.content_type, poster.size) == ("poster.png", "image/png", 106)
    assert (filesystem / poster.storage_key).read_bytes().startswith(b"\x89PNG")
    assert poster.uploaded_by.startswith("admin ")
    assert admin_client.get("/admin/attachments/attachment/").status_code == 200
    page = admin_client.get(f"/admin/attachments/attachment/{poster.pk}/change/")
    assert page.status_code == 200 and b"/attachments/" in page.content
    for upload_file, words in ((SimpleUploadedFile("big.png", b"p" * 5000, "image/png"), b"4096"),
                               (SimpleUploadedFile("run.exe", b"MZ", "application/x-msdownload"), b"not allowed")):
        answer = admin_client.post("/admin/attachments/attachment/add/", {"upload": upload_file})
        assert answer.status_code == 200 and words in answer.content
    assert Attachment.objects.count() == 1


TYPES = st.sampled_from(["application/pdf", "text/plain", "image/png", "text/html", "", "application/json",
                         "multipart/form-data", "application/octet-stream", "text/plain; charset=utf-8"])


@given(data=st.binary(max_size=2000), content_type=TYPES | st.text(max_size=40),
       filename=st.text(max_size=30) | st.sampled_from(["a.pdf", "notes.txt", "x.png"]))
def test_fuzzed_uploads_get_a_2xx_or_a_4xx_never_a_500(client, key, filesystem, settings, data, content_type,
                                                       filename):
    from urllib.parse import quote

    settings.ATTACHMENT_MAX_BYTES = 1500
    try:
        answer = client.post(f"/api/attachments?filename={quote(filename)}", data=data, content_type=content_type,
                             **auth(key))
    except ValueError:  # the test client itself refuses to build the request (e.g. a header with a newline)
        return
    assert answer.status_code in (201, 400, 413, 415), (answer.status_code, answer.content[:300])
    body = answer.json()
    if answer.status_code == 201:
        assert body["size"] == len(data) and 0 < len(data) <= 1500
    else:
        assert isinstance(body.get("error"), str) and body["error"]


def test_the_storage_setting_is_read_from_the_environment(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_DEVELOPMENT": "1", "NOTIFY_ATTACHMENT_STORAGE": "s3",
           "AWS_STORAGE_BUCKET_NAME": "b1", "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
           "NOTIFY_VAR_DIR": str(tmp_path)}
    code = ("from django.conf import settings; s = settings.STORAGES['attachments'];"
            "print(s['BACKEND'], s['OPTIONS']['bucket_name'], s['OPTIONS']['endpoint_url'])")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
                           f" 'notifications_project.settings'); django.setup(); {code}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["storages.backends.s3.S3Storage", "b1", "http://127.0.0.1:9"], done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
                           " 'notifications_project.settings'); django.setup()"], cwd=root,
                          env={**env, "AWS_STORAGE_BUCKET_NAME": ""}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "AWS_STORAGE_BUCKET_NAME" in done.stderr
