"""Send a test to me: the campaign's message to the staff user alone, and what really became of it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.audience.models import Recipient
from apps.content.models import validate_locale
from apps.delivery import service as delivery

from .models import Campaign
from .results import skip_label
from .service import record_event


@dataclass
class TestOutcome:
    notification_id: int
    recipient_id: int
    channels: dict[str, tuple[str, str]]  # channel -> (sent | failed | skipped | dead_lettered | waiting, reason)

    @property
    def delivered(self) -> bool:
        return bool(self.channels) and all(state == "sent" for state, _ in self.channels.values())

    @property
    def summary(self) -> str:
        parts = []
        for channel, (state, reason) in self.channels.items():
            if state == "sent":
                parts.append(f"{channel}: delivered")
            elif state == "waiting":
                parts.append(f"{channel}: no outcome yet{f' ({reason})' if reason else ''}; see its notification "
                             f"#{self.notification_id}")
            else:
                parts.append(f"{channel}: {state.replace('_', '-')}, {reason}")
        return "; ".join(parts)


def _staff_recipient(user) -> Recipient:  # noqa: ANN001
    recipient = Recipient.objects.filter(email=user.email).first() if user.email else None
    if recipient is None:
        recipient, _ = Recipient.objects.get_or_create(external_id=f"staff:{user.username}",
                                                        defaults={"email": user.email, "name": user.get_full_name()})
    return recipient


def outcome_of(notification_id: int, recipient_id: int, channels: list[str]) -> TestOutcome:
    rows = {channel: (outcome, reason) for channel, outcome, reason, _ in delivery.outcome_counts(notification_id)}
    held = delivery.live_counts(notification_id)
    found = {}
    for channel in channels:
        state, reason = rows.get(channel, ("waiting", ""))
        if state == "skipped":
            reason = skip_label(reason)
        elif state == "waiting" and (held.get("quiet_hours") or held.get("throttled")):
            reason = "deferred: quiet hours" if held.get("quiet_hours") else "deferred: capped"
        found[channel] = (state, reason)
    return TestOutcome(notification_id, recipient_id, found)


def send_test(campaign: Campaign, user, locale: str = "") -> TestOutcome:  # noqa: ANN001
    """Send, then wait up to CAMPAIGN_TEST_SEND_WAIT_SECONDS for every channel's outcome (delivered, failed,
    skipped). With a locale, the staff member's own recipient takes it first, so the test shows that locale's
    text."""
    recipient = _staff_recipient(user)
    if locale and locale != recipient.locale:
        try:
            validate_locale(locale)
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from None
        Recipient.objects.filter(pk=recipient.pk).update(locale=locale)
    notification = delivery.notify(category=campaign.category.slug, audience={"recipients": [recipient.pk]},
                          channels=campaign.channels, context=campaign.context or {}, template_id=campaign.template_id)
    deadline = time.monotonic() + settings.CAMPAIGN_TEST_SEND_WAIT_SECONDS
    while True:
        outcome = outcome_of(notification.pk, recipient.pk, campaign.channels)
        if all(state != "waiting" for state, _ in outcome.channels.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    record_event(campaign, user, "test sent", f"to recipient {recipient.pk}, notification {notification.pk}: "
                                              f"{outcome.summary}")
    return outcome
