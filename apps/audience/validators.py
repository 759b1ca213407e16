from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

_TIMEZONES = frozenset(available_timezones())


def validate_timezone(value: str) -> None:
    """An empty timezone means UTC; anything else must be an IANA name."""
    if value and value not in _TIMEZONES:
        raise ValidationError(f"Unknown timezone {value!r}: use an IANA name such as Europe/London.")


def zone_of(value: str) -> ZoneInfo:
    return ZoneInfo(value or "UTC")


def validate_webhook_url(value: str) -> None:
    """An https URL on a public address (see apps.providers.outbound); checked again before every request."""
    from apps.providers.outbound import check_stored_url

    problem = check_stored_url(value) if value else None
    if problem:
        raise ValidationError(f"Webhook URL refused: {problem}.")
