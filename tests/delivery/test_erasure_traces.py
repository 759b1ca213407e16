"""Erasure reaches the pipeline's side records (apps/delivery/dead_letter_erasure.py, claims.forget_provider_ids):
dead letters that name or quote the erased recipient, made by the real events bridge (a refused raw event,
from Kafka) and by the sender's dead_letter() (a batch's failed recipients), and an unfinished batch's
journal in Redis, exist before the erasure; after it none names them, and what belongs to others stays."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from apps.audience.models import Recipient
from apps.delivery import claims, epoch
from apps.delivery.dead_letters import dead_letter, payload_bytes
from apps.delivery.models import ApiKey, ApiScope, DeadLetter, Erasure
from apps.streaming.topics import EVENTS, topic_name
from tests.bridge.test_bus_fuzzing import publish
from tests.conftest import wait_until

TOKEN = f"erasure-traces-{uuid.uuid4().hex}"


def api(client, method: str, path: str, body: dict | None = None):  # noqa: ANN001, ANN201
    return getattr(client, method)(f"/api{path}", data=json.dumps(body) if body else "",
                                   content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def everything_of(letter: DeadLetter) -> str:
    return " ".join([letter.reason, payload_bytes(letter).decode("utf-8", "replace"), json.dumps(letter.headers),
                     *map(str, letter.recipient_ids)])


@pytest.mark.django_db(transaction=True)
def test_dead_letters_and_journals_name_an_erased_recipient_no_more(stack, client):
    ApiKey.objects.create(name=f"erasure-{TOKEN[-6:]}", token_sha256=ApiKey.hash(TOKEN), scopes=list(ApiScope.values))
    tag = uuid.uuid4().hex[:8]
    email, phone, device = f"erin-{tag}@example.com", f"+447400{uuid.uuid4().int % 10**6:06d}", f"fcm-erin-{tag}"
    for external_id, fields in ((f"erin-{tag}", {"name": "Erin", "email": email, "phone": phone}),
                                (f"olaf-{tag}", {"name": "Olaf", "email": f"olaf-{tag}@example.com"})):
        assert api(client, "put", f"/recipients/{external_id}", fields).status_code == 201
    registered = api(client, "put", f"/recipients/erin-{tag}/devices", {"platform": "fcm", "token": device})
    assert registered.status_code == 201, registered.content
    erin, olaf = (Recipient.objects.get(external_id=f"{name}-{tag}").pk for name in ("erin", "olaf"))

    # Raw events from a source nobody registered: the events bridge dead-letters them as they arrived.
    def refused(recipients: list[int], **fields: object) -> bytes:
        return json.dumps({"source": f"nobody-{tag}", "idempotency_key": f"k-{uuid.uuid4()}", "category": "security",
                           "audience": {"recipients": recipients}, "channels": ["sms"], **fields}).encode()

    events = [refused([erin], title="Your code is 734091", context={"email": email}),
              refused([olaf, erin], title="Match starts", body=f"reply to {email.upper()}"),
              refused([olaf], title="Yours, Olaf")]
    positions = publish([(topic_name(EVENTS), value, [("trace", f"for {phone}".encode())]) for value in events])

    def letter_at(position: tuple[str, int, int]) -> DeadLetter | None:
        return DeadLetter.objects.filter(topic=position[0], partition=position[1], offset=position[2]).first()

    event_letters = wait_until(lambda: all(map(letter_at, positions)) and [letter_at(p) for p in positions],
                               timeout=90, message="the refused events' dead letters")
    # A send batch's exhausted recipients, as the sender records them, and a binary one quoting the token.
    batch_letter = dead_letter("send.email", f"retries exhausted: mailbox {email} full", reason_kind="exhausted",
                               notification_id=1, channel="email", recipient_ids=[olaf, erin])
    alone_letter = dead_letter("send.sms", f"SMS to {phone} refused", reason_kind="exhausted",
                               notification_id=1, channel="sms", recipient_ids=[erin])
    binary_letter = dead_letter("send.push", "bad batch", reason_kind="invalid",
                                payload=b"\x00\xff" + device.encode() + b"\x00", recipient_ids=[erin])
    assert binary_letter.payload_encoding == DeadLetter.Encoding.BASE64
    letters = [*event_letters, batch_letter, alone_letter, binary_letter]
    assert all(any(v in everything_of(x).lower() for v in (email, phone, device)) for x in letters)

    # An unfinished batch that reached Erin and Olaf, its worker gone before it recorded them.
    batch = claims.claim(999_000_001, "push", f"push:{tag}:0.0", [erin, olaf], dispatch_epoch=epoch.current())
    claims.write_journal(batch, {erin: f"projects/x/messages/erin-{tag}", olaf: f"projects/x/messages/olaf-{tag}"})
    claims.release(batch)

    answer = api(client, "delete", f"/recipients/erin-{tag}")
    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert (report["dead_letters_scrubbed"], report["journal_entries_scrubbed"]) == (6, 1), report
    assert Erasure.objects.get(recipient_id=erin).removed == {
        "device": 1, "deadletter (scrubbed)": 6, "journal entry (scrubbed)": 1}

    for letter in letters:
        letter.refresh_from_db()
        text = everything_of(letter)
        assert erin not in letter.recipient_ids and email not in text.lower() and phone not in text, text
        assert device not in text, text
    only_erin, shared, olafs = (json.loads(payload_bytes(x)) for x in event_letters)
    assert only_erin["audience"] == {"recipients": []} and only_erin["title"] == only_erin["context"] == "[erased]"
    assert shared["audience"] == {"recipients": [olaf]} and shared["title"] == "Match starts"
    assert shared["body"] == "reply to [erased]"
    assert olafs == json.loads(events[2]) and event_letters[2].headers[0][1] == "for [erased]"
    assert batch_letter.recipient_ids == [olaf] and batch_letter.reason == "retries exhausted: mailbox [erased] full"
    assert alone_letter.recipient_ids == [] and "SMS" not in alone_letter.reason and alone_letter.reason_kind
    assert base64.b64decode(binary_letter.payload) == b"\x00\xff[erased]\x00"

    # The journal keeps Erin as sent (a resumed run records her, never sends again), without the provider's id.
    resumed = claims.claim(999_000_001, "push", f"push:{tag}:0.0", [erin, olaf], dispatch_epoch=epoch.current())
    assert resumed.state == "resume" and resumed.journal == {erin: "", olaf: f"projects/x/messages/olaf-{tag}"}
    claims.finish(resumed)
    again = api(client, "delete", f"/recipients/olaf-{tag}").json()
    assert again["dead_letters_scrubbed"] == 3 and again["journal_entries_scrubbed"] == 0, again
