"""Email attachments (apps/attachments) on the local filesystem: uploaded over the HTTP API and the admin, then
sent by the real sender and email transport to the local SMTP server: a small file as a MIME part, a large one as
a signed link that works over HTTP and is refused when tampered with or expired. Limits and types are refused with
a 4xx naming them, and fuzzed uploads never get a 500. S3: test_attachments_s3.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.attachments import links
from apps.attachments.models import Attachment
from apps.delivery.models import ApiKey, ApiScope
from tests.attachments.support import PDF, auth, fans, get, mails_to, send_through_api, upload


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
