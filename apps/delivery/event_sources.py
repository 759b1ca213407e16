"""Who may publish raw events to notify.events: the platform itself, and event sources registered in the admin.

An event names its source in the field "source". The platform's own events ("source": "platform") must be
signed with a bus key, as batches are. Another service's source must exist and be active; if it has a
signing key, the event must carry a "signature" header, the hex HMAC-SHA256 of the body with that key.
Kafka does not tell a consumer which principal produced a record, so the signature, not the bus's SASL
user, is what ties an event to its source; the bus's credentials and ACLs decide who may write the topic.
"""

from __future__ import annotations

import hashlib
import hmac

from apps.core.json_checks import RequestError

from .allow_lists import NotAllowed
from .batch_message import BadBatch, verify
from .models import PLATFORM_SOURCE, EventSource


def source_of_event(data: dict, body: bytes, signature: str | None) -> EventSource | None:
    """Take "source" out of the event: None for the platform's own event, else its EventSource.

    Raises RequestError when the field is missing or not a name, NotAllowed when the source is unknown,
    inactive, or the signature is missing or wrong."""
    name = data.pop("source", None)
    if name is None:
        raise RequestError("source", "required: the name of an event source registered in the admin")
    if not isinstance(name, str) or not 0 < len(name) <= 64 or "\x00" in name:
        raise RequestError("source", "the name of an event source (1..64 characters)")
    if name == PLATFORM_SOURCE:
        try:
            verify(body, signature)
        except BadBatch as exc:
            raise NotAllowed("source", f"source {PLATFORM_SOURCE!r}: {exc}") from None
        return None
    source = EventSource.objects.filter(name=name).first()
    if source is None:
        raise NotAllowed("source", f"unknown source {name[:64]!r}: register it in the admin (Event sources)")
    if not source.is_active:
        raise NotAllowed("source", f"source {name!r} is inactive")
    if source.signing_key:
        expected = hmac.new(source.signing_key.encode(), body, hashlib.sha256).hexdigest()
        if not signature:
            raise NotAllowed("source", f"source {name!r} signs its events: the 'signature' header is missing")
        if not hmac.compare_digest(expected, signature):
            raise NotAllowed("source", f"source {name!r}: bad signature (forged, altered, or an old key)")
    return source
