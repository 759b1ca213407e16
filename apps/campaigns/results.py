"""What a campaign's sends came to, per channel: sent, failed (top reasons), skipped by reason,
dead-lettered. Read from the delivery records (PostgreSQL, the record of truth) of one notification:
a GROUP BY over its key range, cached once the notification is complete."""

from __future__ import annotations

from collections import Counter

from django.core.cache import cache
from django.urls import reverse

from apps.delivery.service import outcome_counts

# Skip reasons as a marketer reads them; the pipeline's own word is kept for anything else.
SKIP_LABELS = {
    "opted_out": "opted out", "throttled": "capped", "quiet_hours": "quiet hours", "suppressed": "suppressed",
    "no_active_device": "no contact (no push device)", "no_email": "no contact (no email)",
    "no_phone": "no contact (no phone)", "unknown_recipient": "no contact", "no_webhook_url": "no contact (no URL)",
    "no_contact": "no contact", "inactive": "inactive user", "cancelled": "cancelled",
}
SKIP_GROUPS = ("opted out", "capped", "quiet hours", "no contact", "suppressed")
TOP_REASONS = 5

def skip_label(reason: str) -> str:
    return SKIP_LABELS.get(reason, reason or "unknown")


def notification_results(notification_id: int, complete: bool) -> dict[str, dict]:
    """Per channel: {"sent", "failed", "failed_reasons": [[reason, n]], "skipped": {label: n},
    "dead_lettered", "dead_letters_url", "receipts": {state: n}}."""
    key = f"campaign-results:{notification_id}"
    if complete and (cached := cache.get(key)) is not None:
        return _with_receipts(notification_id, cached)
    rows = outcome_counts(notification_id)
    channels: dict[str, dict] = {}
    failures: dict[str, Counter] = {}
    for channel, status, reason, count in rows:
        entry = channels.setdefault(channel, {"sent": 0, "failed": 0, "skipped": dict.fromkeys(SKIP_GROUPS, 0),
                                              "dead_lettered": 0})
        if status == "sent":
            entry["sent"] += count
        elif status == "failed":
            entry["failed"] += count
            failures.setdefault(channel, Counter())[reason or "unknown"] += count
        elif status == "skipped":
            label = skip_label(reason)
            group = next((g for g in SKIP_GROUPS if label.startswith(g)), label)
            entry["skipped"][group] = entry["skipped"].get(group, 0) + count
        elif status == "dead_lettered":
            entry["dead_lettered"] += count
    dead_letters = reverse("admin:delivery_deadletter_changelist") + f"?notification_id={notification_id}"
    for channel, entry in channels.items():
        entry["failed_reasons"] = failures.get(channel, Counter()).most_common(TOP_REASONS)
        entry["dead_letters_url"] = f"{dead_letters}&channel={channel}"
    if complete:
        cache.set(key, channels, 3600)
    return _with_receipts(notification_id, channels)


def _with_receipts(notification_id: int, channels: dict[str, dict]) -> dict[str, dict]:
    """Providers keep reporting after the sends are complete, so receipts are read afresh, never cached."""
    from apps.receipts.counts import SHOWN, by_channel

    reported = by_channel(notification_id)
    return {channel: {**entry, "receipts": reported.get(channel, dict.fromkeys(SHOWN, 0))}
            for channel, entry in channels.items()}



def variant_results(run) -> list[dict]:  # noqa: ANN001
    """A split run's results per variant (or per wave when it has no variants): sent, failed and skipped
    summed over its parts' notifications and channels, to compare the arms of an A/B test."""
    arms: dict[str, dict] = {}
    for part in run.parts.select_related("variant__template", "notification", "template"):
        name = str(part.variant) if part.variant_id else part.template.name
        arm = arms.setdefault(name, {"variant": name, "share": part.share, "sent": 0, "failed": 0, "skipped": 0,
                                     "pending": 0})
        if part.notification_id is None:
            arm["pending"] += 1
            continue
        complete = part.notification.status == "completed"
        for entry in notification_results(part.notification_id, complete).values():
            arm["sent"] += entry["sent"]
            arm["failed"] += entry["failed"] + entry["dead_lettered"]
            arm["skipped"] += sum(entry["skipped"].values())
    return list(arms.values())
