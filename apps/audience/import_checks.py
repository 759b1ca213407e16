"""The checks of one imported recipient row, the same rules as the API's (apps/api/recipients.py):
a phone number through `phonenumbers` to E.164, an email by Django's validator, an IANA timezone.

check_chunk() is a plain function of plain data, so the import can run it in worker processes; it
answers the COPY text of the good rows and (line, reason, field) for the others.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from .validators import _TIMEZONES, normalise_phone

FIELDS = ("external_id", "name", "email", "phone", "timezone", "locale")
LIMITS = {"external_id": 64, "name": 200, "email": 254, "phone": 64, "timezone": 64, "locale": 16}
_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*")
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_E164_SHAPE = re.compile(r"\+[1-9][0-9]{6,15}")


class _Email(EmailValidator):
    """Django's validator, remembering its verdict on each domain (an import repeats a few thousand)."""

    def validate_domain_part(self, domain_part: str) -> bool:
        return _domain_ok(domain_part)


@lru_cache(maxsize=65_536)
def _domain_ok(domain_part: str) -> bool:
    return EmailValidator.validate_domain_part(_plain_email, domain_part)


_plain_email = EmailValidator()
_email = _Email()


class Rejected(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def check(values: dict[str, str | None]) -> tuple[str | None, ...]:
    """The row as stored (None: not given, so an existing recipient keeps its value), or Rejected."""
    external_id = values.get("external_id")
    if not external_id or not external_id.strip():
        raise Rejected("external_id", "external_id is required")
    if "/" in external_id or external_id != external_id.strip():
        raise Rejected("external_id", "external_id must not contain '/' or surrounding spaces")
    for name, value in values.items():
        if value is None:
            continue
        if len(value) > LIMITS[name]:
            raise Rejected(name, f"{name} longer than {LIMITS[name]} characters")
        if "\x00" in value:
            raise Rejected(name, f"{name} contains a NUL character")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate from a JSON escape
                raise Rejected(name, f"{name} is not valid Unicode text") from None
    email, phone = values.get("email"), values.get("phone")
    timezone, locale = values.get("timezone"), values.get("locale")
    if email:
        email = email.strip()
        try:
            _email(email)
        except ValidationError:
            raise Rejected("email", "invalid email address") from None
    if phone:
        phone = e164(phone.strip())
    if timezone and timezone not in _TIMEZONES:
        raise Rejected("timezone", f"unknown timezone {timezone[:64]!r}")
    if locale == "":
        locale = None  # a locale cannot be cleared: an empty one is not given
    elif locale is not None and not _LOCALE.fullmatch(locale):
        raise Rejected("locale", "locale must look like en or pt-BR")
    return (external_id, values.get("name"), email, phone, timezone, locale)


def e164(value: str) -> str:
    """normalise_phone's answer (the API's rule), or Rejected. A number already in E.164 form is judged
    without phonenumbers.parse (which costs three times its is_valid_number), when parsing would leave
    it as it is: no leading zero and no national prefix to strip (tests/audience/test_recipient_import.py checks
    both ways agree)."""
    if _E164_SHAPE.fullmatch(value):
        number = _plain_e164(value[1:])
        if number is not None:
            if phonenumbers.is_valid_number(number):
                return value
            raise Rejected("phone", "invalid phone number: Not a valid phone number for its country code.")
    try:
        return normalise_phone(value)
    except ValidationError as exc:
        raise Rejected("phone", f"invalid phone number: {exc.messages[0]}") from None


def _plain_e164(digits: str) -> phonenumbers.PhoneNumber | None:
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if len(national) < 2 or national[0] == "0":
        return None
    prefix = _national_prefix(country_code)
    if prefix is not None and prefix.match(national):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))


@lru_cache(maxsize=1024)
def _national_prefix(country_code: int) -> re.Pattern | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


def _copy_value(value: str | None) -> str:
    if value is None:
        return "\\N"
    if _COPY_SPECIAL.search(value):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def parse_json_line(text: str) -> dict[str, str | None]:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise Rejected("line", "not a JSON object") from None
    if not isinstance(record, dict):
        raise Rejected("line", "not a JSON object")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise Rejected(str(unknown[0])[:64], f"unknown field (one of {', '.join(FIELDS)})")
    for name, value in record.items():
        if value is not None and not isinstance(value, str):
            raise Rejected(name, f"{name} must be a string")
    return record


def check_chunk(header: tuple[str, ...] | None, items: list[tuple[int, object]]
                ) -> tuple[str, list[tuple[int, str, str]]]:
    """items: (line, fields) for CSV (fields in `header` order), (line, text) for JSON lines (header None)."""
    out: list[str] = []
    rejects: list[tuple[int, str, str]] = []
    for line, item in items:
        try:
            if header is None:
                values = parse_json_line(item)  # type: ignore[arg-type]
            else:
                if len(item) != len(header):  # type: ignore[arg-type]
                    raise Rejected("line", f"expected {len(header)} fields, found {len(item)}")  # type: ignore[arg-type]
                values = dict(zip(header, item, strict=True))  # type: ignore[arg-type]
            row = check(values)
        except Rejected as exc:
            rejects.append((line, exc.reason, exc.field))
            continue
        out.append(f"{line}\t" + "\t".join(_copy_value(v) for v in row) + "\n")
    return "".join(out), rejects
