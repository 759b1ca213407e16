"""Recipients by the caller's external id: upsert, read, erase (GDPR), an end-user token, deliveries.

PUT    /api/recipients/{external_id}             manage_recipients
GET    /api/recipients/{external_id}             manage_recipients
DELETE /api/recipients/{external_id}             erase_recipients
POST   /api/recipients/{external_id}/token       mint_user_tokens
GET    /api/recipients/{external_id}/deliveries  read_deliveries
Devices and topics: devices.py.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict, field_validator

from apps.audience import tokens
from apps.audience.models import Recipient
from apps.audience.validators import normalise_phone, validate_timezone
from apps.delivery.erasure import erase
from apps.delivery.models import ApiScope, Delivery

from .auth import scoped
from .errors import ApiError
from .paths import EXTERNAL_ID
from .schemas import AUTH_ERRORS, BODY_ERRORS, ErrorOut

router = Router(tags=["recipients"])
EDITABLE = ("name", "email", "phone", "webhook_url", "timezone", "locale", "is_active")


def _django_check(check, value: str) -> str:  # noqa: ANN001
    try:
        return check(value) or value
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None


class RecipientIn(Schema):
    """The fields given are set, the others kept; "" clears a contact point."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field("", max_length=200)
    email: str = Field("", max_length=254, description="Checked with Django's email validator.")
    phone: str = Field("", max_length=32, description="International form; stored as E.164, e.g. +447911123456.")
    webhook_url: str = Field("", max_length=200, description="For the webhook channel: a public https URL.")
    timezone: str = Field("", max_length=64, description="An IANA name such as Europe/London; empty is UTC.")
    locale: str = Field("en", min_length=1, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
    is_active: bool = True

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _django_check(validate_email, value.strip()) if value.strip() else ""

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return _django_check(normalise_phone, value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _django_check(validate_timezone, value)


class RecipientOut(Schema):
    id: int
    external_id: str
    name: str
    email: str
    phone: str
    webhook_url: str
    timezone: str
    locale: str
    is_active: bool


class ErasureOut(Schema):
    external_id: str
    erased: bool
    removed: dict[str, int] = Field(description="Rows removed (devices, follows, preferences, inbox messages, ...).")
    deliveries_anonymised: int
    dead_letters_scrubbed: int = Field(0, description="Dead letters that named or quoted them, scrubbed of it.")
    journal_entries_scrubbed: int = Field(0, description="Provider message ids dropped from unfinished batches' "
                                                         "journals (Redis).")
    scrubbed_elsewhere: dict[str, int] = Field(default_factory=dict, description=(
        "Other traces scrubbed of them, by kind (callback messages that listed them lose their external_id "
        "and reason)."))


class UserTokenOut(Schema):
    token: str
    expires_in: int


class DeliveryOut(Schema):
    notification: int
    channel: str
    status: str
    provider_message_id: str
    reason: str
    attempts: int
    updated_at: str


class DeliveriesOut(Schema):
    recipient: str
    deliveries: list[DeliveryOut]


def recipient_or_404(external_id: str, active_only: bool = False) -> Recipient:
    rows = Recipient.objects.filter(external_id=external_id)
    recipient = (rows.filter(is_active=True) if active_only else rows).first()
    if recipient is None:
        raise ApiError(404, f"no {'active ' if active_only else ''}recipient with external_id {external_id!r}",
                       "external_id")
    return recipient


def as_out(recipient: Recipient) -> dict:
    return {"id": recipient.pk, "external_id": recipient.external_id,
            **{name: getattr(recipient, name) for name in EDITABLE}}


@router.put(f"/recipients/{EXTERNAL_ID}", auth=scoped(ApiScope.MANAGE_RECIPIENTS),
            summary="Create or update a recipient",
            response={200: RecipientOut, 201: RecipientOut, **AUTH_ERRORS, **BODY_ERRORS})
def put_recipient(request: HttpRequest, external_id: str, payload: RecipientIn) -> Status:
    """Upsert by external_id: 201 when created, 200 when updated. Two requests racing to create one
    recipient make one row (the loser updates it)."""
    changes = payload.model_dump(exclude_unset=True)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                recipient = Recipient.objects.select_for_update().filter(external_id=external_id).first()
                created = recipient is None
                recipient = recipient or Recipient(external_id=external_id)
                for name, value in changes.items():
                    setattr(recipient, name, value)
                _validate(recipient)
                recipient.save()
            return Status(201 if created else 200, as_out(recipient))
        except IntegrityError:  # created by a concurrent request between the lookup and the INSERT: update it
            continue
    raise ApiError(409, "the recipient is being changed by another request; send the request again", "external_id")


def _validate(recipient: Recipient) -> None:
    try:
        recipient.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        raise ApiError(400, " ".join(messages), name if name != "__all__" else "body") from None


@router.get(f"/recipients/{EXTERNAL_ID}", auth=scoped(ApiScope.MANAGE_RECIPIENTS), summary="Read a recipient",
            response={200: RecipientOut, **AUTH_ERRORS, 404: ErrorOut})
def get_recipient(request: HttpRequest, external_id: str) -> dict:
    return as_out(recipient_or_404(external_id))


@router.delete(f"/recipients/{EXTERNAL_ID}", auth=scoped(ApiScope.ERASE_RECIPIENTS),
               summary="Erase a recipient (GDPR)", response={200: ErasureOut, **AUTH_ERRORS, 404: ErrorOut})
def delete_recipient(request: HttpRequest, external_id: str) -> dict:
    """The recipient, their contact points, devices, follows, preferences and inbox are deleted; their
    delivery rows stay for the counts but lose what could identify them (provider message ids, reasons).
    The erasure is recorded (who asked, when, what was removed; the external id only as a SHA-256)."""
    report = erase(recipient_or_404(external_id), requested_by=f"api key {request.auth.name}")
    return {"external_id": external_id, "erased": True, **report}


@router.post(f"/recipients/{EXTERNAL_ID}/token", auth=scoped(ApiScope.MINT_USER_TOKENS),
             summary="A token for the end user", response={200: UserTokenOut, **AUTH_ERRORS, 404: ErrorOut})
def recipient_token(request: HttpRequest, external_id: str) -> dict:
    """A token for one end user (their inbox and preferences), for the client app to hand to them."""
    return {"token": tokens.issue(recipient_or_404(external_id, active_only=True)),
            "expires_in": settings.RECIPIENT_TOKEN_MAX_AGE_SECONDS}


@router.get(f"/recipients/{EXTERNAL_ID}/deliveries", auth=scoped(ApiScope.READ_DELIVERIES),
            summary="A recipient's deliveries", response={200: DeliveriesOut, **AUTH_ERRORS, 404: ErrorOut})
def recipient_deliveries(request: HttpRequest, external_id: str) -> dict:
    """Every delivery of one recipient, newest first (at most 200): channel, status, provider id, reason, attempts."""
    recipient = recipient_or_404(external_id)
    rows = Delivery.objects.filter(recipient_id=recipient.pk).order_by("-id")[:200]
    return {"recipient": external_id, "deliveries": [{
        "notification": d.notification_id, "channel": d.channel, "status": d.get_status_display().lower(),
        "provider_message_id": d.provider_message_id, "reason": d.reason, "attempts": d.attempts,
        "updated_at": d.updated_at.isoformat()} for d in rows]}
