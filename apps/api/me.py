"""The end user's own endpoints, with a recipient token (POST /api/recipients/{external_id}/token), never
an API key: the inbox and their preferences. The inbox's live stream (/api/inbox/stream, server-sent events)
stays a plain async Django view in apps/inbox/views.py.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.security import HttpBearer
from pydantic import ConfigDict

from apps.audience.models import Recipient
from apps.audience.tokens import InvalidToken, recipient_from_request
from apps.core.json_checks import BIGINT_MAX
from apps.delivery.api_auth import Refusal
from apps.inbox.models import InboxMessage
from apps.preferences import service

from .errors import ApiError
from .schemas import BODY_ERRORS, ErrorOut

router = Router(tags=["end user"])
PAGE_SIZE = 50


class RecipientToken(HttpBearer):
    def __call__(self, request: HttpRequest) -> Recipient:
        try:
            return recipient_from_request(request)
        except InvalidToken as exc:
            raise Refusal(401, str(exc)) from None

    def authenticate(self, request: HttpRequest, token: str) -> Recipient:  # pragma: no cover - __call__ does it
        return self(request)


USER = RecipientToken()
UNAUTHENTICATED = {401: ErrorOut}


class MessageOut(Schema):
    id: int
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    read: bool


class InboxOut(Schema):
    messages: list[MessageOut]
    unread: int


class InboxQuery(Schema):
    before: int | None = Field(None, ge=1, le=BIGINT_MAX, description="Only messages older than this id.")
    unread: bool = Field(False, description="Only unread messages.")


class ReadOut(Schema):
    id: int
    read: bool


class MarkedOut(Schema):
    marked_read: int


@router.get("/inbox", auth=USER, summary="The user's inbox, newest first",
            response={200: InboxOut, 400: ErrorOut, **UNAUTHENTICATED})
def inbox(request: HttpRequest, query: Query[InboxQuery]) -> dict:
    unknown = sorted(set(request.GET) - set(InboxQuery.model_fields))
    if unknown:
        raise ApiError(400, "unknown query parameter", unknown[0])
    messages = InboxMessage.objects.filter(recipient=request.auth).order_by("-id")
    if query.before is not None:
        messages = messages.filter(id__lt=query.before)
    if query.unread:
        messages = messages.filter(read_at__isnull=True)
    unread = InboxMessage.objects.filter(recipient=request.auth, read_at__isnull=True).count()
    return {"messages": [m.as_json() for m in messages[:PAGE_SIZE]], "unread": unread}


@router.post("/inbox/read-all", auth=USER, summary="Mark every message read",
             response={200: MarkedOut, **UNAUTHENTICATED})
def mark_all_read(request: HttpRequest) -> dict:
    count = InboxMessage.objects.filter(recipient=request.auth, read_at__isnull=True).update(read_at=timezone.now())
    return {"marked_read": count}


@router.post("/inbox/{message_id}/read", auth=USER, summary="Mark one message read",
             response={200: ReadOut, 400: ErrorOut, 404: ErrorOut, **UNAUTHENTICATED})
def mark_read(request: HttpRequest, message_id: int) -> dict:
    if not 1 <= message_id <= BIGINT_MAX or not InboxMessage.objects.filter(
            recipient=request.auth, pk=message_id).update(read_at=timezone.now()):
        raise ApiError(404, f"no message {message_id} in this inbox", "message_id")
    return {"id": message_id, "read": True}


class QuietHoursIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    start: str = Field(description="HH:MM in the user's timezone")
    end: str


class PreferencesIn(Schema):
    """Only what is given changes. preferences: {category slug: {channel: true|false}}."""

    model_config = ConfigDict(extra="forbid", strict=True)
    preferences: dict[str, dict[str, bool]] = Field(default_factory=dict)
    timezone: str = Field("UTC", max_length=64, description="An IANA name such as Europe/London.")
    quiet_hours: QuietHoursIn | None = None


class CategoryPreferenceOut(Schema):
    category: str
    name: str
    kind: str
    channels: dict[str, bool]
    required_channels: list[str]


class QuietHoursOut(Schema):
    start: str
    end: str


class PreferencesOut(Schema):
    timezone: str
    quiet_hours: QuietHoursOut | None
    categories: list[CategoryPreferenceOut]


@router.get("/me/preferences", auth=USER, summary="The user's preferences",
            response={200: PreferencesOut, **UNAUTHENTICATED})
def my_preferences(request: HttpRequest) -> dict:
    return service.state(request.auth)


@router.patch("/me/preferences", auth=USER, summary="Change the user's preferences",
              response={200: PreferencesOut, **BODY_ERRORS, **UNAUTHENTICATED})
def change_my_preferences(request: HttpRequest, payload: PreferencesIn) -> dict:
    try:
        service.update(request.auth, payload.model_dump(exclude_unset=True))
    except service.PreferenceError as exc:
        raise ApiError(400, exc.message, exc.field) from None
    request.auth.refresh_from_db()
    return service.state(request.auth)
