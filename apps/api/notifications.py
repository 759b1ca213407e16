"""POST /api/notifications (scope send, with an Idempotency-Key) and GET /api/notifications/{id} (scope
read_status, the key's own notifications only)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Header, Path, Router, Schema, Status
from pydantic import ConfigDict, PrivateAttr, model_validator

from apps.core.channels import Channel
from apps.core.json_checks import BIGINT_MAX, RequestError
from apps.delivery.api_auth import check_send
from apps.delivery.models import MAX_RECIPIENT_ID, ApiScope, Notification, Source
from apps.delivery.requests import MAX_RECIPIENTS_INLINE, NotificationRequest, parse_request
from apps.delivery.service import submit_reporting
from apps.delivery.status import status_of
from apps.receipts.counts import SHOWN as RECEIPTS_SHOWN
from apps.receipts.counts import totals as receipt_totals

from .auth import scoped
from .errors import ApiError, Rejected
from .schemas import AUTH_ERRORS, BODY_ERRORS, ErrorOut

router = Router(tags=["notifications"])
Id = Field(ge=1, le=BIGINT_MAX)


class _Closed(Schema):
    model_config = ConfigDict(extra="forbid")


class TopicAudience(_Closed):
    topic: str = Field(description="Everyone following this topic (a slug).")


class RecipientsAudience(_Closed):
    recipients: list[int] = Field(min_length=1, max_length=MAX_RECIPIENTS_INLINE,
                                  description=f"Recipient ids, each 1..{MAX_RECIPIENT_ID}.")


class SegmentAudience(_Closed):
    segment: int = Id


class AllAudience(_Closed):
    all: Literal[True]


class CampaignAudience(_Closed):
    campaign: int = Id


PlainAudience = TopicAudience | RecipientsAudience | SegmentAudience | AllAudience | CampaignAudience


class Slice(_Closed):
    of: PlainAudience
    timezones: list[str] | None = Field(None, min_length=1, max_length=1000)
    share: list[int] | None = Field(None, min_length=2, max_length=2, description="[from, to): recipient id % 100.")


class SliceAudience(_Closed):
    slice: Slice


class NotificationIn(_Closed):
    """Validated by apps/delivery/requests.parse_request, the checks notify(), the signal and Kafka events
    share (so every source refuses the same request with the same words); this schema documents them."""

    category: str = Field(description="A category slug, e.g. goal-alerts.")
    channels: list[Channel] = Field(min_length=1)
    audience: PlainAudience | SliceAudience
    title: str = Field("", max_length=200)
    body: str = Field("", max_length=4000, description="Title or body is required (or a template_id).")
    context: dict[str, Any] = Field(default_factory=dict, description="Values for the template, at most 64 KB.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200,
                                        description="Or the Idempotency-Key header, which wins.")
    template_id: int | None = Field(None, ge=1, le=BIGINT_MAX)
    attachments: list[int] | None = Field(None, description="Ids of files this key uploaded (POST /api/attachments),"
                                          " carried by the emails; at most NOTIFY_ATTACHMENTS_PER_MESSAGE (10).")
    _parsed: NotificationRequest | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _shared_checks(cls, data: object, handler: Any, info: Any) -> NotificationIn:  # noqa: ANN401
        request = (info.context or {}).get("request")
        header = request.headers.get("Idempotency-Key") if request is not None else None
        try:
            parsed = parse_request(data, idempotency_key=header)
        except RequestError as exc:
            raise Rejected(exc) from None
        model = handler(data)
        model._parsed = parsed
        return model

    @property
    def parsed(self) -> NotificationRequest:
        assert self._parsed is not None
        return self._parsed


class NotificationOut(Schema):
    id: int
    status: str
    category: str
    channels: list[str]
    idempotency_key: str | None
    targeted: int | None = Field(description="Recipients in the audience, once the dispatcher has counted them.")
    sent: int
    failed: int
    skipped: int
    pending: int | None
    throttled: int
    first_send_at: str | None
    last_send_at: str | None
    recipients_per_s: float | None
    created_at: str
    completed_at: str | None
    receipts: dict[str, int] = Field(description="What providers reported afterwards: delivered, bounced (hard),"
                                     " soft_bounced, complained, opened, clicked, undelivered (SMS).")


@router.post("/notifications", auth=scoped(ApiScope.SEND), summary="Send a notification",
             response={202: NotificationOut, **AUTH_ERRORS, **BODY_ERRORS, 422: ErrorOut, 503: ErrorOut})
def create_notification(request: HttpRequest, payload: NotificationIn,
                        idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1,
                                                             max_length=200)) -> Status:
    """Accepted (202) once recorded and published; the same Idempotency-Key again answers the same
    notification (422 if the body differs). 503: recorded but not yet published, send it again."""
    check_send(request.auth, payload.parsed)
    notification, created = submit_reporting(payload.parsed, Source.API, api_key=request.auth)
    return Status(202, _status(notification, created))


@router.get("/notifications/{notification_id}", auth=scoped(ApiScope.READ_STATUS), summary="A notification's status",
            response={200: NotificationOut, **AUTH_ERRORS, 400: ErrorOut, 404: ErrorOut})
def notification_status(request: HttpRequest, notification_id: int = Path(..., ge=1, le=BIGINT_MAX)) -> dict:
    """Only the key's own notifications: another key's (or a campaign's) is a 404 like one that does not exist."""
    notification = Notification.objects.filter(pk=notification_id, api_key=request.auth).first()
    if notification is None:
        raise ApiError(404, f"no notification {notification_id}", "notification_id")
    return _status(notification)


def _status(notification: Notification, created_now: bool = False) -> dict:
    # Receipts follow sends: none yet for a notification this request created, so no query.
    receipts = dict.fromkeys(RECEIPTS_SHOWN, 0) if created_now else receipt_totals(notification.pk)
    return status_of(notification) | {"receipts": receipts}
