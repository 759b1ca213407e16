"""Signed download links for attachments too large to go in the email.

A link carries the attachment id and its expiry, signed with SECRET_KEY (Django's signing, as the
unsubscribe links are); the download view refuses a tampered one (400) and an expired one (410).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "attachment-download-link"


class LinkRefused(Exception):  # noqa: N818
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def download_url(attachment_id: int, max_age_seconds: int | None = None, now: float | None = None) -> str:
    """A link valid for ATTACHMENT_LINK_MAX_AGE_SECONDS from now (or `max_age_seconds`)."""
    age = settings.ATTACHMENT_LINK_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
    expires = int((time.time() if now is None else now) + age)
    token = signing.dumps({"a": attachment_id, "e": expires}, salt=SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("attachment-download", args=[token])


def read_token(token: str) -> int:
    """The attachment id the link is for; raises LinkRefused."""
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkRefused("This link is not valid: it may have been altered or cut short.", 400) from None
    if not isinstance(value, dict) or not isinstance(value.get("a"), int) or not isinstance(value.get("e"), int):
        raise LinkRefused("This link is not valid.", 400)
    if value["e"] < time.time():
        raise LinkRefused("This link has expired. Ask the sender for the file again.", 410)
    return value["a"]
