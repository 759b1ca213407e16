"""What the sender needs of a notification, read once per process and kept: a fan-out's thousands of
batches share one notification (its texts and rendered content per channel and locale, its rules)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache, partial

from apps.content import rendering
from apps.core import channels
from apps.preferences import links
from apps.providers.base import Content

from . import attachment_hooks, gate
from .models import Notification


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
    dispatch_epoch: str = ""
    accepted_at: float = 0.0  # the notification's creation (epoch seconds): the OTP latency metric's start
    first_send_marked: bool = False  # the stage timestamp needs one Redis call per process, not per batch
    _texts: dict = field(default_factory=dict)
    _contents: dict = field(default_factory=dict)
    _attachments: tuple | None = None

    @property
    def localized(self) -> bool:
        """The template has locale variants: each recipient's locale picks its text."""
        return self.template is not None and bool(self.template.locale_variants())

    def texts(self, channel: str, locale: str = "") -> rendering.ChannelTexts:
        if (channel, locale) not in self._texts:
            self._texts[channel, locale] = rendering.texts_for(channel, self.title, self.body, self.template, locale)
        return self._texts[channel, locale]

    def content(self, channel: str, locale: str = "") -> Content:
        """The same content for every recipient (of one locale); raises RenderError if it cannot be built."""
        if (channel, locale) not in self._contents:
            try:
                self._contents[channel, locale] = self.finish(
                    channel, rendering.render(self.texts(channel, locale), self.context))
            except rendering.RenderError as exc:
                self._contents[channel, locale] = exc
        content = self._contents[channel, locale]
        if isinstance(content, rendering.RenderError):
            raise content
        return content

    def finish(self, channel: str, content: Content) -> Content:
        spec = channels.spec(channel)
        if self.unsubscribable and spec.unsubscribe_link:
            content = replace(content, unsubscribe_url=partial(links.unsubscribe_url, category=self.category))
        if not spec.attachments:
            return content
        if self._attachments is None:  # one query per notification and process (apps/attachments)
            self._attachments = attachment_hooks.email_parts(self.id, getattr(self.template, "pk", None))
        return replace(content, attachments=self._attachments) if self._attachments else content


def notification_info(notification_id: int) -> NotificationInfo | None:
    try:
        return _notification_info(notification_id)
    except Notification.DoesNotExist:  # not cached: it may be committed by the time the batch comes back
        return None


@lru_cache(maxsize=256)
def _notification_info(notification_id: int) -> NotificationInfo:
    """Per-process cache: a fan-out's thousands of batches share one notification."""
    notification = Notification.objects.select_related("category", "template").prefetch_related(
        "template__locales").get(pk=notification_id)
    category = notification.category
    expires_at = notification.expires_at or notification.created_at + timedelta(seconds=category.ttl_seconds)
    rules = gate.Rules(notification.pk, category.slug, urgent=category.is_transactional or category.priority == "high",
                       daily_cap=category.daily_cap, expires_at=expires_at.timestamp())
    return NotificationInfo(notification.pk, category.max_attempts, category.slug, notification.title,
                            notification.body, notification.context or {}, notification.template, rules,
                            unsubscribable=not category.is_transactional, dispatch_epoch=notification.dispatch_epoch,
                            accepted_at=notification.created_at.timestamp())


def forget_notifications() -> None:
    """Read every notification afresh (a re-dispatch may have given one a new epoch)."""
    _notification_info.cache_clear()
