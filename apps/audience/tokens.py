"""Tokens that let an end user act as themselves (inbox, preferences) without an account here.

The client app's backend asks for one with its API key (POST /api/recipients/<external_id>/token)
and hands it to its user. They are signed with SECRET_KEY and expire.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, JsonResponse

from .models import Recipient

SALT = "recipient-token"


class InvalidToken(Exception):
    pass


def issue(recipient: Recipient) -> str:
    return signing.dumps({"r": recipient.pk}, salt=SALT, compress=True)


def recipient_from_token(token: str) -> Recipient:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.RECIPIENT_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise InvalidToken("token expired") from None
    except signing.BadSignature:
        raise InvalidToken("invalid token") from None
    recipient = Recipient.objects.filter(pk=data.get("r"), is_active=True).first()
    if recipient is None:
        raise InvalidToken("invalid token")
    return recipient


def recipient_from_request(request: HttpRequest, allow_query: bool = False) -> Recipient:
    """The recipient of the request's bearer token. Only the event stream passes allow_query, for ?token=
    (EventSource cannot set headers): a token in a URL ends up in proxy and server logs."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = request.GET.get("token", "") if allow_query else ""
    if not token:
        raise InvalidToken("missing token: send 'Authorization: Bearer <recipient token>'")
    return recipient_from_token(token.strip())


def as_recipient(view):  # noqa: ANN001, ANN201
    """A view for an end user: called as view(request, recipient, ...), or 401 JSON without a valid token."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):  # noqa: ANN202
        try:
            recipient = recipient_from_request(request)
        except InvalidToken as exc:
            return JsonResponse({"error": str(exc)}, status=401)
        return view(request, recipient, *args, **kwargs)

    return wrapper
