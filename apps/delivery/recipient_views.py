"""Service API on recipients, each endpoint behind its own API-key scope:

PUT  /api/recipients/<external_id>             manage_recipients: create or update contact points
POST /api/recipients/<external_id>/token       mint_user_tokens: a token for the end user
GET  /api/recipients/<external_id>/deliveries  read_deliveries: the recipient's delivery history
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.audience import tokens
from apps.audience.models import Recipient

from .api_auth import api_key_required
from .models import ApiKey, ApiScope, Delivery
from .views import BodyError, error, read_json_body

EDITABLE = ("name", "email", "phone", "webhook_url", "timezone", "locale", "is_active")


@csrf_exempt
@require_http_methods(["PUT"])
@api_key_required(ApiScope.MANAGE_RECIPIENTS)
def put_recipient(request: HttpRequest, api_key: ApiKey, external_id: str) -> JsonResponse:
    """The fields given are set, the others kept; every field is validated (a webhook URL must be a public
    https one) before anything is saved."""
    try:
        data = read_json_body(request)
    except BodyError as exc:
        return exc.response()
    if not isinstance(data, dict):
        return error(400, "must be a JSON object", "body")
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        return error(400, f"unknown field (one of {', '.join(EDITABLE)})", unknown[0])
    for name, value in data.items():
        expected = bool if name == "is_active" else str
        if not isinstance(value, expected):
            return error(400, f"must be a {'boolean' if expected is bool else 'string'}", name)
    recipient = Recipient.objects.filter(external_id=external_id).first()
    created = recipient is None
    recipient = recipient or Recipient(external_id=external_id)
    for name, value in data.items():
        setattr(recipient, name, value)
    try:
        recipient.full_clean()
        with transaction.atomic():
            recipient.save()
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        return error(400, " ".join(messages), name if name != "__all__" else "body")
    except IntegrityError:  # created concurrently by another request
        return error(409, f"recipient {external_id!r} was created meanwhile; send the request again")
    return JsonResponse({"external_id": recipient.external_id, "id": recipient.pk,
                         **{name: getattr(recipient, name) for name in EDITABLE}}, status=201 if created else 200)


@csrf_exempt
@require_http_methods(["POST"])
@api_key_required(ApiScope.MINT_USER_TOKENS)
def recipient_token(request: HttpRequest, api_key: ApiKey, external_id: str) -> JsonResponse:
    """A token for one end user (their inbox and preferences), for the client app to hand to them."""
    recipient = Recipient.objects.filter(external_id=external_id, is_active=True).first()
    if recipient is None:
        return error(404, f"no active recipient with external_id {external_id!r}")
    return JsonResponse({"token": tokens.issue(recipient),
                         "expires_in": settings.RECIPIENT_TOKEN_MAX_AGE_SECONDS})


@require_http_methods(["GET"])
@api_key_required(ApiScope.READ_DELIVERIES)
def recipient_deliveries(request: HttpRequest, api_key: ApiKey, external_id: str) -> JsonResponse:
    """Every delivery of one recipient, newest first: channel, status, provider id, reason, attempts."""
    recipient = Recipient.objects.filter(external_id=external_id).first()
    if recipient is None:
        return error(404, f"no recipient with external_id {external_id!r}")
    rows = Delivery.objects.filter(recipient_id=recipient.pk).order_by("-id")[:200]
    return JsonResponse({"recipient": external_id, "deliveries": [{
        "notification": d.notification_id, "channel": d.channel, "status": d.get_status_display().lower(),
        "provider_message_id": d.provider_message_id, "reason": d.reason, "attempts": d.attempts,
        "updated_at": d.updated_at.isoformat()} for d in rows]})
