"""The bulk import's fast E.164 check (apps/audience/import_checks.e164) agrees with the API's rule
(phonenumbers.parse, is_valid_number, E.164 format: apps/audience/validators.normalise_phone)."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apps.audience.import_checks import Rejected, e164
from apps.audience.validators import normalise_phone


def _slow(value: str) -> str | None:
    try:
        return normalise_phone(value)
    except ValidationError:
        return None


def _fast(value: str) -> str | None:
    try:
        return e164(value)
    except Rejected:
        return None


def test_example_numbers_of_every_region_agree():
    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            for variant in (text, text[:-1], text + "9", text[:4] + "0" + text[4:]):
                assert _fast(variant) == _slow(variant), variant
                checked += 1
    assert checked > 1000


@settings(max_examples=600)
@given(st.from_regex(r"\A\+[0-9]{1,17}\Z") | st.text(alphabet="+0123456789 -()", max_size=20))
@example("+4407700900123")
@example("+390612345678")
@example("+11234567890")
def test_any_number_gets_the_same_verdict_both_ways(value):
    assert _fast(value) == _slow(value)
