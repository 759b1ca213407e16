"""Read and change one user's preferences: per category and channel, timezone, quiet hours.

Shared by the end-user API and the signed preference page, so both validate the same way.
"""

from __future__ import annotations

from datetime import time

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audience.models import Recipient
from apps.audience.validators import validate_timezone
from apps.core.channels import Channel

from .models import Category, Preference, QuietHours


class PreferenceError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def state(recipient: Recipient) -> dict:
    own = {(p.category_id, p.channel): p.enabled for p in recipient.preferences.all()}
    quiet = QuietHours.objects.filter(recipient=recipient).first()
    return {
        "timezone": recipient.timezone or "UTC",
        "quiet_hours": {"start": f"{quiet.start:%H:%M}", "end": f"{quiet.end:%H:%M}"} if quiet else None,
        "categories": [
            {"category": c.slug, "name": c.name, "kind": c.kind,
             "channels": {ch: own.get((c.pk, ch), c.default_enabled) for ch in Channel.values},
             "required_channels": list(c.required_channels)}
            for c in Category.objects.order_by("slug")
        ],
    }


def update(recipient: Recipient, data: object) -> None:
    """Apply {"preferences": {category: {channel: bool}}, "timezone": str, "quiet_hours": {...} | null}.

    Validates everything first; raises PreferenceError naming the field, and changes nothing then.
    """
    if not isinstance(data, dict):
        raise PreferenceError("body", "must be a JSON object")
    unknown = sorted(set(data) - {"preferences", "timezone", "quiet_hours"})
    if unknown:
        raise PreferenceError(unknown[0], "unknown field")
    choices = _parse_choices(data.get("preferences", {}))
    timezone = data.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            raise PreferenceError("timezone", "an IANA timezone name such as Europe/London")
        try:
            validate_timezone(timezone)
        except ValidationError as exc:
            raise PreferenceError("timezone", exc.messages[0]) from None
    quiet = _parse_quiet_hours(data["quiet_hours"]) if "quiet_hours" in data else ...
    with transaction.atomic():
        for category, channel, enabled in choices:
            set_choice(recipient, category, channel, enabled)
        if timezone is not None:
            recipient.timezone = "" if timezone == "UTC" else timezone
            recipient.save(update_fields=["timezone"])
        if quiet is None:
            QuietHours.objects.filter(recipient=recipient).delete()
        elif quiet is not ...:
            QuietHours.objects.update_or_create(recipient=recipient, defaults={"start": quiet[0], "end": quiet[1]})


def set_choice(recipient: Recipient, category: Category, channel: str, enabled: bool) -> None:
    Preference.objects.update_or_create(recipient=recipient, category=category, channel=channel,
                                        defaults={"enabled": enabled})


def unsubscribe(recipient: Recipient, category: Category) -> list[str]:
    """Turn the category off on every channel the user may turn off; returns those channels."""
    channels = [ch for ch in Channel.values if category.can_turn_off(ch)]
    with transaction.atomic():
        for channel in channels:
            set_choice(recipient, category, channel, False)
    return channels


def _parse_choices(raw: object) -> list[tuple[Category, str, bool]]:
    if not isinstance(raw, dict):
        raise PreferenceError("preferences", "an object of {category: {channel: true|false}}")
    categories = {c.slug: c for c in Category.objects.filter(slug__in=[k for k in raw if isinstance(k, str)])}
    choices = []
    for slug, channels in raw.items():
        category = categories.get(slug)
        if category is None:
            raise PreferenceError(f"preferences.{slug}", f"unknown category {slug!r}")
        if not isinstance(channels, dict):
            raise PreferenceError(f"preferences.{slug}", "an object of {channel: true|false}")
        for channel, enabled in channels.items():
            where = f"preferences.{slug}.{channel}"
            if channel not in Channel.values:
                raise PreferenceError(where, f"unknown channel {channel!r}; one of {Channel.values}")
            if not isinstance(enabled, bool):
                raise PreferenceError(where, "true or false")
            if not enabled and not category.can_turn_off(channel):
                raise PreferenceError(where, f"{category.name} cannot be turned off on {channel}")
            choices.append((category, channel, enabled))
    return choices


def _parse_quiet_hours(raw: object) -> tuple[time, time] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise PreferenceError("quiet_hours", 'null or {"start": "HH:MM", "end": "HH:MM"}')
    parsed = []
    for name in ("start", "end"):
        try:
            parsed.append(time.fromisoformat(raw[name]) if isinstance(raw[name], str) and len(raw[name]) == 5
                          else None)
        except ValueError:
            parsed.append(None)
        if parsed[-1] is None:
            raise PreferenceError(f"quiet_hours.{name}", "a time as HH:MM")
    if parsed[0] == parsed[1]:
        raise PreferenceError("quiet_hours.end", "must differ from start")
    return parsed[0], parsed[1]
