"""HTTP API: POST /api/notifications (API key with scope send + Idempotency-Key), GET /api/notifications/<id>
(scope read_status, the key's own notifications). Recipient endpoints: recipient_views.py.

Every error is JSON: {"error": "...", "field": "..."} with a 4xx status.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.streaming.client import BrokerUnavailable

from . import json_checks, progress
from .api_auth import Refusal, api_key_required, check_send
from .idempotency import IdempotencyConflict
from .models import ApiKey, ApiScope, Notification, Source
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


@csrf_exempt
@require_http_methods(["POST"])
@api_key_required(ApiScope.SEND)
def create_notification(request: HttpRequest, api_key: ApiKey) -> JsonResponse:
    key = request.headers.get("Idempotency-Key")
    try:
        parsed = parse_request(read_json_body(request), idempotency_key=key)
        check_send(api_key, parsed)
        notification = submit(parsed, Source.API, api_key=api_key)
    except BodyError as exc:
        return exc.response()
    except Refusal as refusal:
        return refusal.response()
    except IdempotencyConflict as exc:
        return JsonResponse({"error": exc.message, "field": exc.field, "differing": exc.differing}, status=422)
    except RequestError as exc:
        return error(400, exc.message, exc.field)
    except BrokerUnavailable:
        return error(503, "notification recorded but not yet published; retry with the same Idempotency-Key")
    return JsonResponse(status_of(notification), status=202)


@require_http_methods(["GET"])
@api_key_required(ApiScope.READ_STATUS)
def notification_status(request: HttpRequest, api_key: ApiKey, notification_id: int) -> JsonResponse:
    """Only the key's own notifications: another key's (or a campaign's) is a 404 like one that does not exist."""
    notification = Notification.objects.filter(pk=notification_id, api_key=api_key).first()
    if notification is None:
        return error(404, f"no notification {notification_id}")
    return JsonResponse(status_of(notification))


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
