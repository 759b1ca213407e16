"""Send one batch (a Kafka message's recipients, up to 5,000) through the channel's provider and record the outcomes.

A constant number of round trips per batch, whatever its size: one claim, one admission (caps and quiet
hours), one contact query, one write of every outcome, one progress update. The provider calls, of at
most max_batch targets each, run several at once (provider_calls.py)."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass, field, fields

from apps.content import rendering
from apps.core import channels, metrics
from apps.providers.base import MAX_RETRY_AFTER_SECONDS, Content, Outcome, Result, Target

from . import claims, control, gate, progress, provider_calls, records
from .batch_message import BatchMessage
from .contacts import NO_CONTACT_REASON, deactivate_tokens, load_profiles, load_targets
from .models import DeliveryStatus
from .notification_info import NotificationInfo, forget_notifications, notification_info
from .provider_calls import RateLimited
from .signals import addresses_refused

__all__ = ["BatchBusy", "RateLimited", "notification_info", "send_batch"]

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0


class BatchBusy(Exception):
    """Another worker holds this batch's claim; try again after a while."""


@dataclass
class BatchReport:
    counts: dict = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)
    retry_devices: dict[int, list[int]] = field(default_factory=dict)  # recipient sent elsewhere -> devices to retry
    dead_ids: list[int] = field(default_factory=list)
    dead_reason: str = ""
    dead_reason_kind: str = "attempts_exhausted"
    retry_delay: float = 0.0
    completed: bool = False
    provider: str = "none"
    handed_on: bool = False  # its retries and dead letters went to the caller's hand_on before it was done

    def plan(self) -> claims.HandOn:
        """Its retries and dead letters: the fields it shares with claims.HandOn."""
        return claims.HandOn(**{part.name: getattr(self, part.name) for part in fields(claims.HandOn)})

    def follow(self, plan: claims.HandOn) -> None:
        for part in fields(claims.HandOn):
            setattr(self, part.name, copy(getattr(plan, part.name)))


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))
    wait = retry_after if retry_after and retry_after == retry_after else 0.0  # None and NaN: no wait asked
    return max(delay, min(wait, MAX_RETRY_AFTER_SECONDS))


def send_batch(notification_id: int, channel: str, batch_id: str, recipient_ids: list[int], attempt: int = 1,
               resume: bool = False, replay: bool = False, priority: str = "normal",
               deferred: str = "", device_ids: list[int] | None = None,
               hand_on: Callable[[BatchReport], None] | None = None) -> BatchReport:
    """Send one batch and record it. `replay` (a dead-letter replay) may overwrite dead-lettered rows;
    `deferred` says why an earlier pass held this batch back (frequency cap, quiet hours); `device_ids`
    limits a retry to those devices of its recipients. `hand_on` schedules the report's retries and
    dead letters; it runs before the batch is marked done, so a kill in between repeats it, never loses it."""
    info = notification_info(notification_id)
    if info is None:
        return BatchReport(dead_ids=list(recipient_ids), dead_reason="unknown notification",
                           dead_reason_kind="unknown_notification")
    run_state = control.state(notification_id)
    if run_state == control.PAUSED:
        batch = BatchMessage(notification_id, channel, priority, batch_id, recipient_ids, attempt, resume, replay,
                             deferred, list(device_ids or []))
        if control.park(notification_id, batch):
            return BatchReport()
        run_state = control.state(notification_id)
    first_pass = attempt == 1 and not deferred and not replay  # later passes inherit their recipients
    claim = claims.claim(notification_id, channel, batch_id, recipient_ids if first_pass else None,
                         info.dispatch_epoch)
    if not claim.same_epoch:
        forget_notifications()  # a re-dispatch may have given it the new epoch meanwhile
    if claim.state == "done":
        return BatchReport()
    if claim.state == "busy":
        raise BatchBusy(claim.batch_key)
    if claim.foreign:
        recipient_ids = [r for r in recipient_ids if r not in claim.foreign]
    try:
        ref = gate.BatchRef(batch_id, priority, attempt, deferred)
        cancelled = run_state == control.CANCELLED
        report = _send_claimed(info, channel, ref, recipient_ids, resume or claim.state == "resume" or cancelled,
                               replay, claim, cancelled, device_ids, hand_on)
    except BaseException:
        claims.release(claim)
        raise
    return report


def _send_claimed(info: NotificationInfo, channel: str, ref: gate.BatchRef, recipient_ids: list[int],
                  resume: bool, replay: bool, claim: claims.Claim, cancelled: bool = False,
                  device_ids: list[int] | None = None,
                  hand_on: Callable[[BatchReport], None] | None = None) -> BatchReport:
    attempt = ref.attempt
    uncounted: Counter = Counter()
    if (resume or replay) and not device_ids:  # a device retry's recipients are recorded sent already
        done = records.already_recorded(info.id, channel, recipient_ids, except_dead_lettered=replay)
        recipient_ids = [r for r in recipient_ids if r not in done]
        if claim.state == "resume" and claim.same_epoch and not replay:
            # An earlier run of this batch recorded these and stopped before counting them: counting
            # and marking the batch done are one step (claims.finish_counted).
            uncounted = Counter(records.STATUS_FIELD[status] for status in done.values())
    outcomes = records.Outcomes()
    report = BatchReport()
    if claim.handed_on:  # the earlier run sent and recorded all of it, then stopped while handing on the rest
        report.follow(claim.handed_on)
        recipient_ids = []
    if claim.journal:  # the provider took these before an earlier run of this batch died
        outcomes.add_sent({r: claim.journal[r] for r in recipient_ids if r in claim.journal})
        recipient_ids = [r for r in recipient_ids if r not in claim.journal]
    if cancelled:
        for recipient_id in recipient_ids:
            outcomes.add(recipient_id, DeliveryStatus.SKIPPED, "cancelled")
        recipient_ids = []
    if recipient_ids and not replay:
        recipient_ids = gate.admit(info.rules, channel, ref, recipient_ids, outcomes)
    targets = load_targets(channel, recipient_ids, device_ids) if recipient_ids else []
    with_contact = {t.recipient_id for t in targets}
    for recipient_id in recipient_ids:
        if recipient_id not in with_contact:
            outcomes.add(recipient_id, DeliveryStatus.SKIPPED, NO_CONTACT_REASON.get(channel, "no_contact"))
    if targets and not info.first_send_marked:
        progress.mark(info.id, "first_send")
        info.first_send_marked = True
    targets, shared_content = _with_content(info, channel, targets, outcomes) if targets else ([], None)
    if targets:
        results, report.provider = provider_calls.call(channel, targets, shared_content,
                                                       _journal_as_answered(claim, targets))
        sent = _collect(info, channel, targets, results, attempt, outcomes, report, device_retry=bool(device_ids))
        outcomes.add_sent(sent)
        if sent and attempt == 1 and not ref.deferred and not replay:
            metrics.accepted_to_provider(ref.priority, channel, info.accepted_at)
    counts = records.write(info.id, channel, outcomes, attempts=attempt, replace_dead_lettered=replay,
                           first_write=claim.state == "fresh")
    report.counts = dict(counts)
    for outcome, n in counts.items():
        metrics.count(channel, info.category, report.provider, outcome, n)
    metrics.count(channel, info.category, report.provider, "retried", len(report.retry_ids))
    # A replay changes finished counts (dead-lettered to sent); the caller recounts from PostgreSQL.
    # Device retries keep the notification open until they have run.
    pending = sum(len(ids) for ids in report.retry_devices.values()) - len(device_ids or ())
    if hand_on is not None:
        if (report.retry_ids or report.retry_devices or report.dead_ids) and not claim.handed_on:
            claims.note_hand_on(claim, report.plan())
        hand_on(report)
        report.handed_on = True
    if replay:
        claims.finish(claim)
        report.completed = True
    else:
        report.completed = claims.finish_counted(claim, info.id, **(counts + uncounted), devices_pending=pending)
    return report


def _journal_as_answered(claim: claims.Claim, targets: list[Target]) -> Callable[[list[int], list[Result]], None]:
    """Journal a recipient once every one of their targets has answered and one of them was sent, so a
    kill resends at most the calls in flight, and never leaves a device of a journaled recipient unsent."""
    outstanding = Counter(target.recipient_id for target in targets)
    sent: dict[int, str] = {}

    def on_answer(indexes: list[int], results: list[Result]) -> None:
        done: dict[int, str] = {}
        for index, result in zip(indexes, results, strict=True):
            recipient_id = targets[index].recipient_id
            if result.outcome is Outcome.SENT:
                sent.setdefault(recipient_id, result.provider_id)
            outstanding[recipient_id] -= 1
            if not outstanding[recipient_id] and recipient_id in sent:
                done[recipient_id] = sent[recipient_id]
        claims.write_journal(claim, done)

    return on_answer


def _with_content(info: NotificationInfo, channel: str, targets: list[Target],
                  outcomes: records.Outcomes) -> tuple[list[Target], Content | None]:
    """The targets that have a message, and the content they share (None when each carries its own
    rendering); a recipient whose message cannot be rendered fails alone."""
    if not info.texts(channel).personal and not info.localized:
        try:
            return targets, info.content(channel)
        except rendering.RenderError as exc:
            for recipient_id in dict.fromkeys(t.recipient_id for t in targets):
                outcomes.add(recipient_id, DeliveryStatus.FAILED, str(exc))
            return [], None
    profiles = load_profiles(list({t.recipient_id for t in targets}))
    contents: dict[int, Content | rendering.RenderError] = {}
    for recipient_id, profile in profiles.items():
        texts = info.texts(channel, profile["locale"])
        try:
            contents[recipient_id] = info.finish(channel, rendering.render(texts, info.context, profile)) \
                if texts.personal else info.content(channel, profile["locale"])
        except rendering.RenderError as exc:
            contents[recipient_id] = exc
            outcomes.add(recipient_id, DeliveryStatus.FAILED, str(exc))
    return [t._replace(content=contents[t.recipient_id]) for t in targets
            if isinstance(contents.get(t.recipient_id), Content)], None


def _collect(info: NotificationInfo, channel: str, targets: list[Target], results: list[Result], attempt: int,
             outcomes: records.Outcomes, report: BatchReport, device_retry: bool = False) -> dict[int, str]:
    """Fold per-target results into one outcome per recipient: sent if any of their devices got it.

    Returns the sent ones (recipient id -> provider message id), for the caller to journal and then
    record; the others go into `outcomes` and `report` here.
    """
    sent: dict[int, str] = {}
    unsent: dict[int, list[tuple[Target, Result]]] = defaultdict(list)
    invalid_addresses = []
    for target, result in zip(targets, results, strict=True):
        if result.outcome is Outcome.SENT:
            sent.setdefault(target.recipient_id, result.provider_id)
            continue
        unsent[target.recipient_id].append((target, result))
        if result.invalid_address:
            invalid_addresses.append((target.recipient_id, target.address))
    retry_after = 0.0
    for recipient_id, failures in unsent.items():
        results_of_one = [result for _, result in failures]
        if recipient_id in sent or device_retry:
            # Another of their devices took it, so the recipient is recorded sent; a device that failed
            # for now is tried again on its own, never the devices that already have the message.
            retry = [t.device_id for t, r in failures if r.outcome is Outcome.TRANSIENT and t.device_id]
            if retry and attempt < info.max_attempts:
                report.retry_devices[recipient_id] = retry
                retry_after = max(retry_after, *(r.retry_after or 0.0 for r in results_of_one))
            elif retry:
                log.warning("notification %s: %d device(s) of recipient %s gave up after %d attempt(s)", info.id,
                            len(retry), recipient_id, attempt)
            continue
        transient = next((r for r in results_of_one if r.outcome is Outcome.TRANSIENT), None)
        if transient is None:
            outcomes.add(recipient_id, DeliveryStatus.FAILED, results_of_one[0].error)
        elif attempt >= info.max_attempts:
            report.dead_reason = f"gave up after {attempt} attempt(s): {transient.error}"
            report.dead_ids.append(recipient_id)
            outcomes.add(recipient_id, DeliveryStatus.DEAD_LETTERED, report.dead_reason)
        else:
            report.retry_ids.append(recipient_id)
            retry_after = max(retry_after, transient.retry_after or 0.0)
    if report.retry_ids or report.retry_devices:
        # Never later than the notification's expiry: a retry due after it would only be skipped.
        report.retry_delay = min(backoff(attempt, retry_after), max(info.rules.expires_at - time.time(), 0.0))
    if invalid_addresses and channels.spec(channel).dead_address == "deactivate_device":
        deactivate_tokens([address for _, address in invalid_addresses], "provider: invalid token")
    if invalid_addresses:
        addresses_refused.send(sender=None, channel=channel, refused=invalid_addresses)
    return sent
