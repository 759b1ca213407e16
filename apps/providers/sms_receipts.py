"""Twilio's webhooks, read: the request signature (X-Twilio-Signature, checked by the twilio library's
RequestValidator against the public URL Twilio called), status callbacks (MessageSid, MessageStatus,
ErrorCode) and inbound messages (From, Body) that opt a number out or back in."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from .receipts import Receipt, Reply, State, SuppressionReason

_STATES = {"delivered": State.DELIVERED, "undelivered": State.UNDELIVERED, "failed": State.FAILED}
OPT_OUT_CODE = "21610"  # "Attempt to send to unsubscribed recipient"
# The number can never take a message: invalid, not mobile, unknown handset, landline.
INVALID_NUMBER_CODES = {"21211", "21214", "21217", "21612", "21614", "30005", "30006"}
# Twilio's own opt-out and opt-in keywords (Advanced Opt-Out defaults).
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP"}


def is_signed(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """`params`: the form as received (a QueryDict keeps repeated fields, which Twilio signs too)."""
    if not auth_token or not signature:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)


def status_receipt(params: Mapping[str, str]) -> Receipt | None:
    """None for a status that is not final (queued, sending, sent...) or a callback without a message SID."""
    state = _STATES.get(params.get("MessageStatus", ""))
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if state is None or not sid:
        return None
    code = params.get("ErrorCode", "").strip()
    suppress = None
    if code == OPT_OUT_CODE:
        suppress = SuppressionReason.OPT_OUT
    elif code in INVALID_NUMBER_CODES:
        suppress = SuppressionReason.INVALID_ADDRESS
    detail = f"error {code}" if code else ""
    return Receipt("twilio", "sms", sid[:200], state, None, params.get("To", "").strip(), detail[:300], suppress)


def reply(params: Mapping[str, str]) -> Reply | None:
    """An inbound SMS whose whole text is an opt-out or opt-in keyword; None for any other message."""
    word = params.get("Body", "").strip().strip(".!").upper()
    number = params.get("From", "").strip()
    if not number or word not in STOP_WORDS | START_WORDS:
        return None
    return Reply("sms", number, stop=word in STOP_WORDS)
