"""The recipient batch: one message type for the batch topics, retries, deferrals, parking and replays.

On the wire it is compact JSON with short keys, since a 2.5M fan-out writes 500 of them:
{"n": notification, "c": channel, "p": priority, "b": batch id, "r": [recipient ids],
 "a": attempt, "resume": bool, "replay": bool, "d": why it was deferred, "v": [device ids] to retry}. Anything that does
not decode to a valid batch raises BadBatch with the reason, so a consumer dead-letters it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field, fields, replace

from django.conf import settings

from apps.core.channels import Channel, Priority
from apps.core.json_checks import BIGINT_MAX, MAX_DEPTH, is_int

from .models import MAX_NOTIFICATION_ID, MAX_RECIPIENT_ID

MAX_RECIPIENTS = 50_000
MAX_ATTEMPT = 1_000
DEFERRAL_REASONS = ("", "throttled", "quiet_hours")

_WIRE = {"notification_id": "n", "channel": "c", "priority": "p", "batch_id": "b", "recipient_ids": "r",
         "attempt": "a", "resume": "resume", "replay": "replay", "deferred": "d", "device_ids": "v"}
_FIELD = {short: name for name, short in _WIRE.items()}
_REQUIRED = ("n", "c", "p", "b", "r")
_OMITTED_WHEN_EMPTY = ("resume", "replay", "deferred", "device_ids")


SIGNATURE_HEADER = "signature"


class BadBatch(ValueError):
    pass


def signature(body: bytes) -> str:
    """HMAC-SHA256 of a batch message's body with the current bus key: only the platform writes batches,
    since a batch is trusted to have passed opt-outs (and a replay skips them)."""
    return hmac.new(settings.BUS_SIGNING_KEYS[0].encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, value: str | bytes | None) -> None:
    """Raise BadBatch unless `value` is the body's signature under one of the bus keys (rotation)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not value:
        raise BadBatch("not signed: internal topics take only the platform's own messages")
    for key in settings.BUS_SIGNING_KEYS:
        if hmac.compare_digest(hmac.new(key.encode(), body, hashlib.sha256).hexdigest(), value):
            return
    raise BadBatch("bad signature: forged, altered, or signed with a key no longer listed")


@dataclass(frozen=True)
class BatchMessage:
    notification_id: int
    channel: str
    priority: str
    batch_id: str
    recipient_ids: list[int]
    attempt: int = 1
    resume: bool = False
    replay: bool = False
    deferred: str = ""  # "throttled" or "quiet_hours": a pass that a cap or quiet hours held back
    # A retry of some devices only (a user's other devices took the message): their audience_device ids.
    device_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        validate(self)

    def with_changes(self, **changes: object) -> BatchMessage:
        return replace(self, **changes)

    def as_kwargs(self) -> dict:
        """The fields by name, the lists shared, not copied (dataclasses.asdict copies every id one call
        at a time, which cost more than the rest of handing a 5,000-id batch on)."""
        return {name: getattr(self, name) for name in _NAMES}

    def to_wire(self) -> dict:
        """The short-key form, leaving out fields at their defaults."""
        wire = {}
        for name, value in self.as_kwargs().items():
            if name == "attempt" and value == 1 or name in _OMITTED_WHEN_EMPTY and not value:
                continue
            wire[_WIRE[name]] = value
        return wire

    def encode(self) -> bytes:
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()

    def signed(self) -> tuple[bytes, dict[str, str]]:
        """The body and the headers to publish it with on an internal topic."""
        body = self.encode()
        return body, {SIGNATURE_HEADER: signature(body)}

    @classmethod
    def from_wire(cls, data: object) -> BatchMessage:
        if not isinstance(data, dict):
            raise BadBatch("a batch must be a JSON object")
        unknown = sorted(str(k) for k in set(data) - set(_FIELD))
        if unknown:
            raise BadBatch(f"{unknown[0][:40]!r}: unknown field")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise BadBatch(f"{missing[0]} ({_FIELD[missing[0]]}): required")
        try:
            return cls(**{_FIELD[k]: v for k, v in data.items()})
        except TypeError as exc:  # a field of the wrong kind that validate() did not name
            raise BadBatch(str(exc)) from None

    @classmethod
    def decode(cls, raw: bytes) -> BatchMessage:
        # validate() checks every field's type and range itself, and unknown fields are refused, so the
        # generic walk of json_checks.check_storable (a Python step per id) is not needed here.
        try:
            data = json.loads(raw)
        except RecursionError:
            raise BadBatch(f"body: nested deeper than {MAX_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError):
            raise BadBatch("body: not valid JSON") from None
        return cls.from_wire(data)


_NAMES = tuple(f.name for f in fields(BatchMessage))


def _are_ids(values: object, high: int, most: int, distinct: bool = True) -> bool:
    """A list of ints (not bools) in 1..high, at most `most` of them; checked at C speed, since a
    batch holds thousands."""
    if not isinstance(values, list) or len(values) > most:
        return False
    if not values:
        return True
    return set(map(type, values)) == {int} and min(values) >= 1 and max(values) <= high and \
        (not distinct or len(set(values)) == len(values))


def validate(batch: BatchMessage) -> None:
    def bad(field: str, message: str) -> BadBatch:
        return BadBatch(f"{_WIRE[field]} ({field}): {message}")

    if not is_int(batch.notification_id, 1, MAX_NOTIFICATION_ID):
        raise bad("notification_id", "an integer id")
    if batch.channel not in Channel.values:
        raise bad("channel", f"one of {Channel.values}")
    if batch.priority not in Priority.values:
        raise bad("priority", f"one of {Priority.values}")
    if not isinstance(batch.batch_id, str) or not 0 < len(batch.batch_id) <= 200 or "\x00" in batch.batch_id:
        raise bad("batch_id", "text of 1..200 characters")
    if not batch.recipient_ids or not _are_ids(batch.recipient_ids, MAX_RECIPIENT_ID, MAX_RECIPIENTS):
        raise bad("recipient_ids", f"a list of 1..{MAX_RECIPIENTS} distinct ids, each 1..{MAX_RECIPIENT_ID}")
    if not is_int(batch.attempt, 1, MAX_ATTEMPT):
        raise bad("attempt", f"an integer 1..{MAX_ATTEMPT}")
    if not isinstance(batch.resume, bool) or not isinstance(batch.replay, bool):
        raise bad("resume" if not isinstance(batch.resume, bool) else "replay", "true or false")
    if batch.deferred not in DEFERRAL_REASONS:
        raise bad("deferred", f"one of {DEFERRAL_REASONS}")
    if not _are_ids(batch.device_ids, BIGINT_MAX, 3 * MAX_RECIPIENTS, distinct=False):
        raise bad("device_ids", f"a list of at most {3 * MAX_RECIPIENTS} device ids")
