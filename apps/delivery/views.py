"""HTTP API: POST /api/notifications (token + Idempotency-Key), GET /api/notifications/<id>.

Every error is JSON: {"error": "...", "field": "..."} with a 4xx status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.audience import tokens
from apps.audience.models import Recipient
from apps.streaming.client import BrokerUnavailable

from . import json_checks, progress
from .models import ApiKey, Delivery, Notification, Source
from .requests import RequestError, parse_request
from .service import submit


def error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


class BodyError(ValueError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def response(self) -> JsonResponse:
        return error(self.status, self.message, self.field)


def read_json_body(request: HttpRequest) -> object:
    """The parsed JSON body, or BodyError: 413 over NOTIFY_API_MAX_BODY_BYTES (judged before the body is
    read), 415 for another content type, 400 for what json_checks refuses (bad JSON, NUL, deep nesting).
    """
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise BodyError(400, "Content-Length is not a number") from None
    if length > settings.API_MAX_BODY_BYTES or len(request.body) > settings.API_MAX_BODY_BYTES:
        raise BodyError(413, f"body larger than {settings.API_MAX_BODY_BYTES} bytes")
    if request.content_type != "application/json":
        raise BodyError(415, "send Content-Type: application/json")
    try:
        return json_checks.decode(request.body)
    except RequestError as exc:
        raise BodyError(400, exc.message, exc.field) from None


def token_required(view):  # noqa: ANN001, ANN201
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):  # noqa: ANN202
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error(401, "missing token: send 'Authorization: Bearer <token>'")
        if not ApiKey.objects.filter(token_sha256=ApiKey.hash(token.strip()), is_active=True).exists():
            return error(401, "invalid token")
        return view(request, *args, **kwargs)

    return wrapper


@csrf_exempt
@require_http_methods(["POST"])
@token_required
def create_notification(request: HttpRequest) -> JsonResponse:
    key = request.headers.get("Idempotency-Key")
    try:
        parsed = parse_request(read_json_body(request), idempotency_key=key)
        notification = submit(parsed, Source.API)
    except BodyError as exc:
        return exc.response()
    except RequestError as exc:
        return error(400, exc.message, exc.field)
    except BrokerUnavailable:
        return error(503, "notification recorded but not yet published; retry with the same Idempotency-Key")
    return JsonResponse(status_of(notification), status=202)


@require_http_methods(["GET"])
@token_required
def notification_status(request: HttpRequest, notification_id: int) -> JsonResponse:
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return error(404, f"no notification {notification_id}")
    return JsonResponse(status_of(notification))


@csrf_exempt
@require_http_methods(["POST"])
@token_required
def recipient_token(request: HttpRequest, external_id: str) -> JsonResponse:
    """A token for one end user (their inbox and preferences), for the client app to hand to them."""
    recipient = Recipient.objects.filter(external_id=external_id, is_active=True).first()
    if recipient is None:
        return error(404, f"no active recipient with external_id {external_id!r}")
    return JsonResponse({"token": tokens.issue(recipient),
                         "expires_in": settings.RECIPIENT_TOKEN_MAX_AGE_SECONDS})


@require_http_methods(["GET"])
@token_required
def recipient_deliveries(request: HttpRequest, external_id: str) -> JsonResponse:
    """Every delivery of one recipient, newest first: channel, status, provider id, reason, attempts."""
    recipient = Recipient.objects.filter(external_id=external_id).first()
    if recipient is None:
        return error(404, f"no recipient with external_id {external_id!r}")
    rows = Delivery.objects.filter(recipient_id=recipient.pk).order_by("-id")[:200]
    return JsonResponse({"recipient": external_id, "deliveries": [{
        "notification": d.notification_id, "channel": d.channel, "status": d.get_status_display().lower(),
        "provider_message_id": d.provider_message_id, "reason": d.reason, "attempts": d.attempts,
        "updated_at": d.updated_at.isoformat()} for d in rows]})


def status_of(notification: Notification) -> dict:
    marks = progress.read(notification.pk)
    live = marks if notification.status != "completed" else {}
    counts = {name: int(live.get(name, getattr(notification, name, 0) or 0)) for name in ("sent", "failed", "skipped")}
    if live:
        counts["failed"] += int(live.get("dead_lettered", 0))
    targeted = notification.targeted if notification.targeted is not None else live.get("targeted")
    done = sum(counts.values())
    return {
        "id": notification.pk, "status": notification.status, "category": notification.category.slug,
        "channels": notification.channels, "idempotency_key": notification.idempotency_key,
        "targeted": int(targeted) if targeted is not None else None, **counts,
        "pending": max(int(targeted) - done, 0) if targeted is not None else None,
        "throttled": int(marks.get("throttled", 0)),
        "first_send_at": _iso(marks.get("t_first_send")), "last_send_at": _iso(marks.get("t_last_recorded")),
        "recipients_per_s": _rate(counts["sent"], marks.get("t_first_send"), marks.get("t_last_recorded")),
        "created_at": notification.created_at.isoformat(),
        "completed_at": notification.completed_at.isoformat() if notification.completed_at else None,
    }


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _rate(sent: int, first: float | None, last: float | None) -> float | None:
    return round(sent / (last - first), 1) if first and last and last > first else None
