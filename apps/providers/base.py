"""The provider interface: send one batch (<= 500 targets), get one result per target."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple


class Outcome(enum.Enum):
    SENT = "sent"
    TRANSIENT = "transient"  # try again later (5xx, 429, timeout)
    PERMANENT = "permanent"  # never retry (invalid token, malformed message)


@dataclass(frozen=True, eq=False)
class Attachment:
    """A file an email carries: a small one as a MIME part (`read` gives its bytes; the transport reads it
    once per call, whatever the number of recipients), a large one as a link (`link` makes a signed URL)."""

    filename: str
    content_type: str
    size: int
    read: Callable[[], bytes] | None = None
    link: Callable[[], str] | None = None


@dataclass(frozen=True, eq=False)
class Content:
    title: str = ""
    body: str = ""
    data: dict = field(default_factory=dict)
    html: str = ""  # email only, optional
    # email only: recipient id -> signed one-click unsubscribe URL (RFC 8058), when the category allows it
    unsubscribe_url: Callable[[int], str] | None = None
    attachments: tuple[Attachment, ...] = ()  # email only


class Target(NamedTuple):
    recipient_id: int
    address: str  # push token, email address, phone number, URL
    platform: str = ""  # for push: which service the token belongs to (fcm, apns, webpush, fake)
    content: Content | None = None  # this recipient's own rendering, when the message is personalised
    device_id: int = 0  # for push: the device (audience_device id), so a retry can aim at it alone
    secret: str = ""  # for webhooks: the endpoint's own signing secret




class Result(NamedTuple):
    """NamedTuple rather than a dataclass: 500 are made per batch, and this is 3x cheaper.

    `invalid_address` marks a permanent failure that means the contact point is dead (an
    unregistered push token, a bounced mailbox): the caller deactivates it.
    """

    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    retry_after: float | None = None
    invalid_address: bool = False



def sent_results(provider_ids: Iterable[str]) -> list[Result]:
    """One SENT result per provider message id, built without Python-level __new__ calls: a batch
    provider answers for thousands of targets at once."""
    return list(map(tuple.__new__, repeat(Result), zip(repeat(Outcome.SENT), provider_ids, repeat(""), repeat(None),
                                                      repeat(False))))


def transient(error: str, retry_after: float | None = None) -> Result:
    return Result(Outcome.TRANSIENT, error=error, retry_after=retry_after)


def permanent(error: str, invalid_address: bool = False) -> Result:
    return Result(Outcome.PERMANENT, error=error, invalid_address=invalid_address)


MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds, at most an hour: a provider's "inf" or "1e12" must not park a
    retry for ever (the HTTP-date form is rare for these APIs and treated as absent)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class TransportError(Exception):
    """The whole batch failed. `permanent` decides retry or give up."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


    def as_results(self, count: int) -> list[Result]:
        """The same failure for each of `count` targets."""
        outcome = Outcome.PERMANENT if self.permanent else Outcome.TRANSIENT
        return [Result(outcome, error=str(self), retry_after=self.retry_after)] * count


def send_per_content(content: Content, targets: list[Target],
                     send_group: Callable[[Content, list[Target]], list[Result]]) -> list[Result]:
    """For APIs that take one message for many addresses: one send_group call per distinct content.

    A TransportError fails only its own group's targets, so groups already sent stay recorded as
    sent; with a single group it propagates as the whole batch's failure.
    """
    groups: dict[Content, list[int]] = {}
    for index, target in enumerate(targets):
        groups.setdefault(target.content or content, []).append(index)
    results: list[Result] = [None] * len(targets)  # type: ignore[list-item]
    for group_content, indexes in groups.items():
        group = [targets[i] for i in indexes]
        try:
            group_results = send_group(group_content, group)
        except TransportError as exc:
            if len(groups) == 1:
                raise
            group_results = exc.as_results(len(group))
        for index, result in zip(indexes, group_results, strict=True):
            results[index] = result
    return results


class NotConfigured(Exception):
    """A channel has no provider credentials; reported, never silently skipped."""


class Transport:
    """One provider. Subclasses implement send (one provider call); max_batch says how many targets per call.

    `rate_per_s` (0 = none) is the provider's send quota, shared by every worker through Redis.
    `calls_in_flight`: how many send calls may run at once from threads of one process (1 for
    a transport whose client is not thread-safe, or that writes through the thread's database connection).
    """

    name = "base"
    max_batch = 500
    rate_per_s = 0.0
    calls_in_flight = 1

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        raise NotImplementedError

    def close(self) -> None:
        pass
