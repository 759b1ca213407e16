"""What a provider reports after it accepted a message, in the platform's words (one Receipt per message and
recipient). The parsers of each provider's wire format (email_receipts.py, sms_receipts.py) answer these;
apps/receipts records them without knowing any provider."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple


class State(enum.StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"  # a hard bounce: the mailbox does not exist, or the ESP refuses the address
    SOFT_BOUNCED = "soft_bounced"  # for now (mailbox full, greylisted): it may still be delivered
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    UNDELIVERED = "undelivered"  # SMS: the carrier could not deliver it
    FAILED = "failed"  # SMS: Twilio could not send it


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"  # Twilio's 21610: the number replied STOP to this sender
    STOP_REPLY = "stop_reply"
    INVALID_ADDRESS = "invalid_address"
    MANUAL = "manual"


class Receipt(NamedTuple):
    provider: str  # e.g. "postmark", "twilio"
    channel: str  # "email" or "sms"
    message_id: str  # the provider message id the send recorded
    state: State
    at: datetime | None = None
    address: str = ""  # the recipient's address as the provider names it (never logged)
    detail: str = ""  # the provider's words or error code, at most 300 characters
    suppress: SuppressionReason | None = None  # what this receipt says about the address


class Reply(NamedTuple):
    """An inbound message that asks to stop (or start again) sending to its number."""

    channel: str
    address: str
    stop: bool  # True: STOP and its synonyms; False: START and its synonyms
