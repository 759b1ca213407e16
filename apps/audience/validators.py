from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

_TIMEZONES = frozenset(available_timezones())


def validate_timezone(value: str) -> None:
    """An empty timezone means UTC; anything else must be an IANA name."""
    if value and value not in _TIMEZONES:
        raise ValidationError(f"Unknown timezone {value!r}: use an IANA name such as Europe/London.")


def zone_of(value: str) -> ZoneInfo:
    return ZoneInfo(value or "UTC")
