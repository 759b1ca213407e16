"""Erasure, in the callback messages: a delivery.failed or delivery.dead_lettered message that lists an erased
recipient keeps their entry (the counts stay true, and their id names nobody now) but loses what identifies or
quotes them: the caller's external id and the provider's reason. Pending messages are sent scrubbed; the
webhook-id stays. Runs in the erasure's transaction (apps/delivery/erasure.py, signal recipient_erased)."""

from __future__ import annotations

import json

from .messages import OUTCOME_EVENTS
from .models import CallbackMessage

SCRUBBED_FIELDS = ("external_id", "reason")


def scrub_callback_messages(sender: object, recipient_id: int, **kwargs: object) -> dict[str, int]:
    # The stored body is compact JSON (messages.body), so the entry's own text is known.
    listed = CallbackMessage.objects.select_for_update().filter(
        event_type__in=[event for event, _, _ in OUTCOME_EVENTS],
        payload__contains=f'"recipient_id":{int(recipient_id)},')
    changed = 0
    for message in listed.order_by("pk"):
        payload = json.loads(message.payload)
        entries = [entry for entry in payload["data"]["recipients"] if entry.get("recipient_id") == recipient_id]
        for entry in entries:
            entry.update(dict.fromkeys(SCRUBBED_FIELDS, ""))
        if entries:
            message.payload = json.dumps(payload, separators=(",", ":"))
            message.save(update_fields=["payload"])
            changed += 1
    return {"callback message (scrubbed)": changed} if changed else {}
