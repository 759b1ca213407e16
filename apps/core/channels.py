"""The channels a notification goes out on, one spec each, and the priorities that keep OTP codes ahead of a
blast.

A channel is its spec and nothing else: its code in the delivery key, the query that loads its contact
points, the reason recorded when a recipient has none, which template fields make its text, and what a
dead address does. The pipeline, the topics, the admin and the API read the specs; adding a channel is a
spec here (or in NOTIFY_EXTRA_CHANNELS), its provider module, settings, a migration for the new choice, and
tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils.module_loading import import_string

_BY_RECIPIENT = "WHERE id = ANY(%s::bigint[])"


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    label: str
    code: int  # 0..7: three bits of the delivery key; never reuse one
    # Target's six fields (recipient_id, address, platform, content, device_id, secret) for the recipients of
    # %s (a bigint[]) that have a contact point on this channel.
    contacts_sql: str
    no_contact_reason: str
    # The template fields that make its title, body and HTML, each the first non-empty of its names.
    title_fields: tuple[str, ...] = ("push_title",)
    body_fields: tuple[str, ...] = ("push_body",)
    html_fields: tuple[str, ...] = ()
    unsubscribe_link: bool = False  # promotional sends carry each recipient's signed unsubscribe link
    attachments: bool = False  # carries the notification's files (as parts, or links above a size)
    # An address the provider calls dead: "deactivate_device" (push tokens), or "" (it is recorded failed).
    dead_address: str = ""
    # Transport for a channel outside apps/providers: the dotted path of a zero-argument builder.
    transport: str = ""


BUILT_IN = (
    ChannelSpec("push", "Push", 0,
                "SELECT recipient_id, token, platform, NULL, id, '' FROM audience_device"
                " WHERE recipient_id = ANY(%s::bigint[]) AND is_active ORDER BY recipient_id, id",
                "no_active_device", dead_address="deactivate_device"),
    ChannelSpec("email", "Email", 1,
                f"SELECT id, email, '', NULL, 0, '' FROM audience_recipient {_BY_RECIPIENT} AND email <> ''",
                "no_email", title_fields=("email_subject", "push_title"), body_fields=("email_text", "push_body"),
                html_fields=("email_html",), unsubscribe_link=True, attachments=True),
    ChannelSpec("sms", "SMS", 2,
                f"SELECT id, phone, '', NULL, 0, '' FROM audience_recipient {_BY_RECIPIENT} AND phone <> ''",
                "no_phone", title_fields=(), body_fields=("sms_text", "push_body")),
    ChannelSpec("in_app", "In-app", 3,
                f"SELECT id, id::text, '', NULL, 0, '' FROM audience_recipient {_BY_RECIPIENT}",
                "unknown_recipient"),
    ChannelSpec("webhook", "Webhook", 4,
                f"SELECT id, webhook_url, '', NULL, 0, webhook_secret FROM audience_recipient {_BY_RECIPIENT}"
                " AND webhook_url <> ''",
                "no_webhook_url"),
)


def _all_specs() -> dict[str, ChannelSpec]:
    specs = [*BUILT_IN, *(import_string(path) for path in getattr(settings, "NOTIFY_EXTRA_CHANNELS", []))]
    codes = [spec.code for spec in specs]
    if len(set(codes)) != len(codes) or not all(0 <= code < 8 for code in codes):
        raise ValueError(f"channel codes must be distinct and in 0..7: {codes}")
    return {spec.name: spec for spec in specs}


SPECS: dict[str, ChannelSpec] = _all_specs()
Channel = models.TextChoices("Channel", [(name.upper(), (name, spec.label)) for name, spec in SPECS.items()])


def spec(channel: str) -> ChannelSpec:
    return SPECS[channel]


class Priority(models.TextChoices):
    HIGH = "high", "High (OTP, security)"
    NORMAL = "normal", "Normal"
    LOW = "low", "Low (marketing)"
