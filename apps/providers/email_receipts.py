"""ESP tracking events (django-anymail's normalised AnymailTrackingEvent) as Receipts.

anymail names the event; whether a bounce is hard or soft is each ESP's own word, read here from the
raw event: Amazon SES's bounceType, Postmark's Type, SendGrid's type; Mailgun's severity anymail
already maps (temporary failures are "deferred").
"""

from __future__ import annotations

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason

from .receipts import Receipt, State, SuppressionReason

_STATES = {
    EventType.DELIVERED: State.DELIVERED, EventType.BOUNCED: State.BOUNCED, EventType.DEFERRED: State.SOFT_BOUNCED,
    EventType.COMPLAINED: State.COMPLAINED, EventType.OPENED: State.OPENED, EventType.CLICKED: State.CLICKED,
    EventType.REJECTED: State.BOUNCED,
}
_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
# An ESP that refuses to send (SendGrid's "dropped") because the address bounced before, or is invalid.
_REJECTED_AS_BOUNCE = {RejectReason.BOUNCED, RejectReason.INVALID}


def email_receipt(event: AnymailTrackingEvent, esp_name: str) -> Receipt | None:
    """None for an event that says nothing about delivery (queued, sent, unknown...) or names no message."""
    state = _STATES.get(event.event_type)
    if state is None or not event.message_id or not isinstance(event.message_id, str):
        return None
    provider = esp_name.lower().replace(" ", "_")
    if event.event_type == EventType.REJECTED and event.reject_reason not in _REJECTED_AS_BOUNCE:
        return None
    if state is State.BOUNCED and not _is_hard(provider, event.esp_event):
        state = State.SOFT_BOUNCED
    suppress = {State.BOUNCED: SuppressionReason.HARD_BOUNCE,
                State.COMPLAINED: SuppressionReason.COMPLAINT}.get(state)
    if event.reject_reason == RejectReason.INVALID:
        suppress = SuppressionReason.INVALID_ADDRESS
    detail = event.description or event.mta_response or event.reject_reason or ""
    recipient = event.recipient if isinstance(event.recipient, str) else ""
    return Receipt(provider, "email", event.message_id[:200], state, event.timestamp, recipient.strip().lower(),
                   str(detail)[:300], suppress)


def _is_hard(provider: str, raw: object) -> bool:
    if not isinstance(raw, dict):
        return True
    if provider == "amazon_ses":
        bounce = raw.get("bounce")
        return not isinstance(bounce, dict) or bounce.get("bounceType") == "Permanent"
    if provider == "postmark":
        return raw.get("Type") in _POSTMARK_HARD
    if provider == "sendgrid":
        return raw.get("event") != "bounce" or raw.get("type", "bounce") == "bounce"
    return True
