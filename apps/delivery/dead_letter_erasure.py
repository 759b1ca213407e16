"""Erasure, in the dead letters: what they keep of an erased recipient goes with them (apps/delivery/erasure.py).

A dead letter names a recipient in two ways: its recipient_ids (a send batch's failed recipients), or its
payload (a raw event whose audience is {"recipients": [ids]}). And any letter may quote a contact detail
(a provider's reason quoting an address, an event's context holding an email). So, for the recipient:
- their id leaves recipient_ids; a letter that named only them loses its reason too (a reason can quote
  an address, as a delivery row's reason is cleared);
- an event naming them loses them from its audience, and one that was for them alone loses its content
  (title, body, context, data): it was their message;
- their email, phone, webhook URL and device tokens are replaced by "[erased]" wherever a letter holds them
  (reason, payload, headers), in text and base64 payloads alike.
The rest of a letter stays (topic, position, reason kind, the other recipients), so it can still be
understood and replayed for the others. Copies already published to notify.dlq are Kafka's: they go with
its retention, which the README's erasure section states.
"""

from __future__ import annotations

import base64
import json
import re

from django.db.models import Q

from apps.audience.models import Device, Recipient

from .dead_letters import as_text, payload_bytes
from .models import DeadLetter

ERASED = "[erased]"
CONTENT_FIELDS = ("title", "body", "context", "data")
MIN_IDENTIFIER_CHARS = 5  # shorter strings would match text that is not theirs


def identifiers(recipient: Recipient) -> list[str]:
    """The recipient's contact details that can appear in a letter, longest first (a token may contain a
    shorter one)."""
    tokens = Device.objects.filter(recipient_id=recipient.pk).values_list("token", flat=True)
    found = {value for value in (recipient.email, recipient.phone, recipient.webhook_url, *tokens)
             if value and len(value) >= MIN_IDENTIFIER_CHARS}
    return sorted(found, key=lambda value: (-len(value), value))


def scrub_dead_letters(recipient_id: int, contact_details: list[str]) -> int:
    """Scrub every dead letter that names or quotes the recipient; returns how many changed. Run it in the
    erasure's transaction."""
    named_in_event = rf'"recipients"\s*:\s*\[[^]]*\y{int(recipient_id)}\y'  # PostgreSQL regex; checked in Python
    query = Q(recipient_ids__contains=[recipient_id]) | Q(payload__regex=named_in_event)
    for value in contact_details:
        query |= Q(payload__icontains=value) | Q(reason__icontains=value) | Q(headers__icontains=value)
    pattern = _pattern(contact_details)
    changed = 0
    for letter in DeadLetter.objects.select_for_update().filter(query).order_by("pk"):
        if _scrub(letter, recipient_id, pattern):
            letter.save(update_fields=["recipient_ids", "reason", "payload", "payload_encoding", "headers"])
            changed += 1
    return changed


def _pattern(contact_details: list[str]) -> re.Pattern[bytes] | None:
    if not contact_details:
        return None
    return re.compile(b"|".join(re.escape(value.encode()) for value in contact_details), re.IGNORECASE)


def _replace(raw: bytes, pattern: re.Pattern[bytes] | None) -> bytes:
    return pattern.sub(ERASED.encode(), raw) if pattern else raw


def _scrub(letter: DeadLetter, recipient_id: int, pattern: re.Pattern[bytes] | None) -> bool:
    before = (list(letter.recipient_ids), letter.reason, letter.payload, letter.payload_encoding, letter.headers)
    if letter.recipient_ids and set(letter.recipient_ids) == {recipient_id}:
        letter.reason = f"{ERASED}: the reason went with its recipient"
    else:
        letter.reason = _replace(letter.reason.encode(), pattern).decode()
    letter.recipient_ids = [other for other in letter.recipient_ids if other != recipient_id]
    payload = _without_recipient(_replace(payload_bytes(letter), pattern), recipient_id)
    letter.payload, letter.payload_encoding = as_text(payload)
    headers = []
    for name, value, encoding in letter.headers:
        raw = base64.b64decode(value) if encoding == DeadLetter.Encoding.BASE64 else value.encode()
        scrubbed = _replace(raw, pattern)
        headers.append([name, value, encoding] if scrubbed == raw else [name, *as_text(scrubbed)])
    letter.headers = headers
    return before != (letter.recipient_ids, letter.reason, letter.payload, letter.payload_encoding, letter.headers)


def _without_recipient(payload: bytes, recipient_id: int) -> bytes:
    """A raw event naming the recipient in its audience, without them; without its content if it was for
    them alone. Anything else as it is."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    audience = event.get("audience") if isinstance(event, dict) else None
    listed = audience.get("recipients") if isinstance(audience, dict) else None
    if not isinstance(listed, list) or not any(_is_them(item, recipient_id) for item in listed):
        return payload
    audience["recipients"] = [item for item in listed if not _is_them(item, recipient_id)]
    if not audience["recipients"]:
        for name in CONTENT_FIELDS:
            if name in event:
                event[name] = ERASED
    return json.dumps(event).encode()


def _is_them(item: object, recipient_id: int) -> bool:
    return type(item) is int and item == recipient_id
