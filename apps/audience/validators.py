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


def normalise_phone(value: str) -> str:
    """A phone number in international form (+ and country code), as E.164: "+44 7700 900123" -> "+447911123456".
    Empty stays empty."""
    import phonenumbers

    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError("Not a phone number: use the international form, e.g. +447911123456.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("Not a valid phone number for its country code.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
