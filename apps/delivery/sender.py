"""Send one batch (<= 500 recipients) through the channel's provider and record the outcomes."""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache, partial

from django.conf import settings

from apps.monitoring import metrics
from apps.preferences import links
from apps.providers.base import Content, NotConfigured, Outcome, Result, Target, TransportError, permanent
from apps.providers.registry import transport_for

from . import claims, control, gate, progress, ratelimit, records, rendering
from .batch_message import BatchMessage
from .contacts import NO_CONTACT_REASON, deactivate_tokens, load_profiles, load_targets
from .models import DeliveryStatus, Notification

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0


class BatchBusy(Exception):
    """Another worker holds this batch's claim; try again after a while."""


class RateLimited(Exception):
    """The provider's shared send quota is spent for now; try again after `wait` seconds (no attempt used)."""

    def __init__(self, wait: float, provider: str) -> None:
        super().__init__(f"{provider} rate limited for {wait:.1f}s")
        self.wait, self.provider = wait, provider


@dataclass
class NotificationInfo:
    id: int
    max_attempts: int
    category: str
    title: str
    body: str
    context: dict
    template: object | None
    rules: gate.Rules
    unsubscribable: bool  # emails carry a one-click unsubscribe link (not for transactional categories)
    first_send_marked: bool = False  # the stage timestamp needs one Redis call per process, not per batch
    _texts: dict = field(default_factory=dict)
    _contents: dict = field(default_factory=dict)

    def texts(self, channel: str) -> rendering.ChannelTexts:
        if channel not in self._texts:
            self._texts[channel] = rendering.texts_for(channel, self.title, self.body, self.template)
        return self._texts[channel]

    def content(self, channel: str) -> Content:
        """The same content for every recipient (raises RenderError if it cannot be built)."""
        if channel not in self._contents:
            try:
                self._contents[channel] = self.finish(channel, rendering.render(self.texts(channel), self.context))
            except rendering.RenderError as exc:
                self._contents[channel] = exc
        content = self._contents[channel]
        if isinstance(content, rendering.RenderError):
            raise content
        return content

    def finish(self, channel: str, content: Content) -> Content:
        if channel == "email" and self.unsubscribable:
            return replace(content, unsubscribe_url=partial(links.unsubscribe_url, category=self.category))
        return content


@dataclass
class BatchReport:
    counts: dict = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)
    dead_ids: list[int] = field(default_factory=list)
    dead_reason: str = ""
    dead_reason_kind: str = "attempts_exhausted"
    retry_delay: float = 0.0
    completed: bool = False
    provider: str = "none"


def notification_info(notification_id: int) -> NotificationInfo | None:
    try:
        return _notification_info(notification_id)
    except Notification.DoesNotExist:  # not cached: it may be committed by the time the batch comes back
        return None


@lru_cache(maxsize=256)
def _notification_info(notification_id: int) -> NotificationInfo:
    """Per-process cache: a fan-out's thousands of batches share one notification."""
    notification = Notification.objects.select_related("category", "template").get(pk=notification_id)
    category = notification.category
    expires_at = notification.expires_at or notification.created_at + timedelta(seconds=category.ttl_seconds)
    rules = gate.Rules(notification.pk, category.slug, urgent=category.is_transactional or category.priority == "high",
                       daily_cap=category.daily_cap, expires_at=expires_at.timestamp())
    return NotificationInfo(notification.pk, category.max_attempts, category.slug, notification.title,
                            notification.body, notification.context or {}, notification.template, rules,
                            unsubscribable=not category.is_transactional)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))
    return max(delay, retry_after or 0.0)


def send_batch(notification_id: int, channel: str, batch_id: str, recipient_ids: list[int], attempt: int = 1,
               resume: bool = False, replay: bool = False, priority: str = "normal",
               deferred: str = "") -> BatchReport:
    """Send one batch and record it. `replay` (a dead-letter replay) may overwrite dead-lettered rows;
    `deferred` says why an earlier pass held this batch back (frequency cap, quiet hours)."""
    info = notification_info(notification_id)
    if info is None:
        return BatchReport(dead_ids=list(recipient_ids), dead_reason="unknown notification",
                           dead_reason_kind="unknown_notification")
    run_state = control.state(notification_id)
    if run_state == control.PAUSED:
        batch = BatchMessage(notification_id, channel, priority, batch_id, recipient_ids, attempt, resume, replay,
                             deferred)
        if control.park(notification_id, batch):
            return BatchReport()
        run_state = control.state(notification_id)
    first_pass = attempt == 1 and not deferred and not replay  # later passes inherit their recipients
    claim = claims.claim(notification_id, channel, batch_id, recipient_ids if first_pass else None)
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
                               replay, claim, cancelled)
    except BaseException:
        claims.release(claim)
        raise
    claims.finish(claim)
    return report


def _send_claimed(info: NotificationInfo, channel: str, ref: gate.BatchRef, recipient_ids: list[int],
                  resume: bool, replay: bool, claim: claims.Claim, cancelled: bool = False) -> BatchReport:
    attempt = ref.attempt
    if resume or replay:
        done = records.already_recorded(info.id, channel, recipient_ids, except_dead_lettered=replay)
        recipient_ids = [r for r in recipient_ids if r not in done]
    outcomes = records.Outcomes()
    report = BatchReport()
    if claim.journal:  # the provider took these before an earlier run of this batch died
        outcomes.add_sent({r: claim.journal[r] for r in recipient_ids if r in claim.journal})
        recipient_ids = [r for r in recipient_ids if r not in claim.journal]
    if cancelled:
        for recipient_id in recipient_ids:
            outcomes.add(recipient_id, DeliveryStatus.SKIPPED, "cancelled")
        recipient_ids = []
    if recipient_ids and not replay:
        recipient_ids = gate.admit(info.rules, channel, ref, recipient_ids, outcomes)
    targets = load_targets(channel, recipient_ids) if recipient_ids else []
    with_contact = {t.recipient_id for t in targets}
    for recipient_id in recipient_ids:
        if recipient_id not in with_contact:
            outcomes.add(recipient_id, DeliveryStatus.SKIPPED, NO_CONTACT_REASON.get(channel, "no_contact"))
    if targets and not info.first_send_marked:
        progress.mark(info.id, "first_send")
        info.first_send_marked = True
    targets, shared_content = _with_content(info, channel, targets, outcomes) if targets else ([], None)
    if targets:
        results, report.provider = _call_provider(channel, targets, shared_content)
        sent = _collect(info, channel, targets, results, attempt, outcomes, report)
        claims.write_journal(claim, sent)
        outcomes.add_sent(sent)
    counts = records.write(info.id, channel, outcomes, attempts=attempt, replace_dead_lettered=replay,
                           first_write=claim.state == "fresh")
    report.counts = dict(counts)
    for outcome, n in counts.items():
        metrics.count(channel, info.category, report.provider, outcome, n)
    metrics.count(channel, info.category, report.provider, "retried", len(report.retry_ids))
    # A replay changes finished counts (dead-lettered to sent); the caller recounts from PostgreSQL.
    report.completed = replay or progress.add(info.id, **counts)
    return report


def _with_content(info: NotificationInfo, channel: str, targets: list[Target],
                  outcomes: records.Outcomes) -> tuple[list[Target], Content | None]:
    """The targets that have a message, and the content they share (None when each carries its own
    rendering); a recipient whose message cannot be rendered fails alone."""
    if not info.texts(channel).personal:
        try:
            return targets, info.content(channel)
        except rendering.RenderError as exc:
            for recipient_id in dict.fromkeys(t.recipient_id for t in targets):
                outcomes.add(recipient_id, DeliveryStatus.FAILED, str(exc))
            return [], None
    profiles = load_profiles(list({t.recipient_id for t in targets}))
    contents: dict[int, Content | rendering.RenderError] = {}
    for recipient_id, profile in profiles.items():
        try:
            contents[recipient_id] = info.finish(channel,
                                                 rendering.render(info.texts(channel), info.context, profile))
        except rendering.RenderError as exc:
            contents[recipient_id] = exc
            outcomes.add(recipient_id, DeliveryStatus.FAILED, str(exc))
    return [t._replace(content=contents[t.recipient_id]) for t in targets
            if isinstance(contents.get(t.recipient_id), Content)], None


def _call_provider(channel: str, targets: list[Target], shared_content: Content | None) -> tuple[list[Result], str]:
    """One call per provider and max_batch targets (push tokens go to the service of their platform)."""
    results: list[Result | None] = [None] * len(targets)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, target in enumerate(targets):
        groups[target.platform].append(index)
    sends = []
    for platform, indexes in groups.items():
        try:
            transport = transport_for(channel, platform)
        except NotConfigured as exc:
            for index in indexes:
                results[index] = permanent(str(exc))
            continue
        owed = ratelimit.wait_for(transport.name, len(indexes), transport.rate_per_s,
                                  settings.RATE_LIMIT_MAX_WAIT_SECONDS)
        if owed:
            raise RateLimited(owed, transport.name)
        sends.append((transport, indexes))
    for transport, indexes in sends:
        for start in range(0, len(indexes), transport.max_batch):
            part = indexes[start:start + transport.max_batch]
            started = time.perf_counter()
            part_results = _send_part(transport, [targets[i] for i in part], shared_content)
            metrics.PROVIDER_SECONDS.labels(transport.name).observe(time.perf_counter() - started)
            if any(r.error.startswith("HTTP 429") for r in part_results):
                ratelimit.cut(transport.name, transport.rate_per_s)
            for index, result in zip(part, part_results, strict=True):
                results[index] = result
    names = {transport.name for transport, _ in sends}
    return results, (names.pop() if len(names) == 1 else "mixed" if names else "none")  # type: ignore[return-value]


def _send_part(transport, targets: list[Target], shared_content: Content | None) -> list[Result]:  # noqa: ANN001
    """One provider call; targets sharing one content go as a batch, personalised ones each with theirs."""
    try:
        return transport.send_batch(shared_content or targets[0].content, targets)
    except TransportError as exc:
        return exc.as_results(len(targets))


def _collect(info: NotificationInfo, channel: str, targets: list[Target], results: list[Result], attempt: int,
             outcomes: records.Outcomes, report: BatchReport) -> dict[int, str]:
    """Fold per-target results into one outcome per recipient: sent if any of their devices got it.

    Returns the sent ones (recipient id -> provider message id), for the caller to journal and then
    record; the others go into `outcomes` and `report` here.
    """
    sent: dict[int, str] = {}
    unsent: dict[int, list[Result]] = defaultdict(list)
    invalid_addresses = []
    for target, result in zip(targets, results, strict=True):
        if result.outcome is Outcome.SENT:
            sent.setdefault(target.recipient_id, result.provider_id)
            continue
        unsent[target.recipient_id].append(result)
        if result.invalid_address:
            invalid_addresses.append(target.address)
    retry_after = 0.0
    for recipient_id, results_of_one in unsent.items():
        if recipient_id in sent:
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
    if report.retry_ids:
        report.retry_delay = backoff(attempt, retry_after)
    if channel == "push":
        deactivate_tokens(invalid_addresses, "provider: invalid token")
    return sent
