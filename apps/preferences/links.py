"""Signed, expiring links for end users: one-click unsubscribe (RFC 8058) and the preference page.

A link carries the recipient (and for unsubscribe, the category) signed with SECRET_KEY and a
timestamp; it is refused once SIGNED_LINK_MAX_AGE_SECONDS have passed. No account or session needed.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

UNSUBSCRIBE_SALT = "unsubscribe-link"
PREFERENCES_SALT = "preference-page-link"


class LinkError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _sign(salt: str, value: dict) -> str:
    return signing.dumps(value, salt=salt, compress=True)


def _unsign(salt: str, token: str) -> dict:
    try:
        value = signing.loads(token, salt=salt, max_age=settings.SIGNED_LINK_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise LinkError(_("This link has expired. Use the link in a more recent message."), 410) from None
    except signing.BadSignature:
        raise LinkError(_("This link is not valid: it may have been altered or cut short."), 400) from None
    if not isinstance(value, dict) or not isinstance(value.get("r"), int):
        raise LinkError(_("This link is not valid."), 400)
    return value


def unsubscribe_token(recipient_id: int, category: str) -> str:
    return _sign(UNSUBSCRIBE_SALT, {"r": recipient_id, "c": category})


def unsubscribe_url(recipient_id: int, category: str) -> str:
    token = unsubscribe_token(recipient_id, category)
    return settings.PUBLIC_BASE_URL + reverse("unsubscribe", args=[token])


def read_unsubscribe_token(token: str) -> tuple[int, str]:
    value = _unsign(UNSUBSCRIBE_SALT, token)
    if not isinstance(value.get("c"), str):
        raise LinkError(_("This link is not valid."), 400)
    return value["r"], value["c"]


def preference_page_url(recipient_id: int) -> str:
    token = _sign(PREFERENCES_SALT, {"r": recipient_id})
    return settings.PUBLIC_BASE_URL + reverse("preference-page", args=[token])


def read_preference_token(token: str) -> int:
    return _unsign(PREFERENCES_SALT, token)["r"]
