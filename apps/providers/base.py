"""The provider interface: send one batch (<= 500 targets), get one result per target."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class Outcome(enum.Enum):
    SENT = "sent"
    TRANSIENT = "transient"  # try again later (5xx, 429, timeout)
    PERMANENT = "permanent"  # never retry (invalid token, malformed message)


class Target(NamedTuple):
    recipient_id: int
    address: str  # push token, email address, phone number, URL


@dataclass(frozen=True)
class Content:
    title: str = ""
    body: str = ""
    data: dict = field(default_factory=dict)


class Result(NamedTuple):
    """NamedTuple rather than a dataclass: 500 are made per batch, and this is 3x cheaper."""

    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    retry_after: float | None = None


class TransportError(Exception):
    """The whole batch failed. `permanent` decides retry or give up."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class NotConfigured(Exception):
    """A channel has no provider credentials; reported, never silently skipped."""


class Transport:
    """One provider. Subclasses implement send_batch; max_batch says how many targets per call."""

    name = "base"
    max_batch = 500

    def send_batch(self, content: Content, targets: list[Target]) -> list[Result]:
        raise NotImplementedError

    def close(self) -> None:
        pass
