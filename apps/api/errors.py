"""Every refusal is JSON with a 4xx status: {"error": "...", "field": "..."} ("field" when one is to blame:
a dotted path such as "audience.topic"), the form the API had before ninja and that Kafka's dead letters
and notify() use too (apps/core/json_checks.RequestError)."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.core.json_checks import RequestError
from apps.core.outages import OUTAGES, BrokerUnavailable, forget_broken_connections
from apps.delivery.api_auth import Refusal
from apps.delivery.idempotency import IdempotencyConflict

from .body import BodyError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by an operation for a refusal of its own: ApiError(404, "no recipient 'x'")."""

    def __init__(self, status: int, message: str, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = status, message, field, extra


class Rejected(Exception):  # noqa: N818 - not a ValueError, so pydantic lets it through unwrapped
    """A RequestError raised inside a schema's validator (shared checks in apps/delivery/requests.py)."""

    def __init__(self, error: RequestError) -> None:
        super().__init__(str(error))
        self.error = error


def error_body(message: str, field: str | None = None, **extra: object) -> dict:
    return {"error": message, **({"field": field} if field else {}), **extra}


def field_of(location: tuple | list) -> str:
    """pydantic's location of an error, as the dotted field path: ("body", "payload", "audience", "topic")
    -> "audience.topic"; ("path", "external_id") -> "external_id"."""
    parts = list(location)
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
        if parts and parts[0] == "payload":
            parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "tagged-union", "union[")):
            path += f".{part}" if path else str(part)
    return path or "body"


def _message(error: dict) -> str:
    text = str(error.get("msg", "invalid"))
    return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def install(api: NinjaAPI) -> None:
    def answer(request: HttpRequest, status: int, body: dict) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        if first.get("type") == "missing" and list(first.get("loc", ()))[:2] == ["body", "payload"] \
                and len(first.get("loc", ())) == 2:
            return answer(request, 400, error_body("required, a JSON object", "body"))
        return answer(request, 400, error_body(_message(first), field_of(first.get("loc", ()))))

    @api.exception_handler(Refusal)
    def refused(request: HttpRequest, exc: Refusal) -> HttpResponse:
        response = answer(request, exc.status, exc.body)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return answer(request, exc.status, error_body(exc.message, exc.field, **exc.extra))

    @api.exception_handler(RequestError)
    def bad_request(request: HttpRequest, exc: RequestError) -> HttpResponse:
        return answer(request, 400, error_body(exc.message, exc.field))

    @api.exception_handler(Rejected)
    def rejected(request: HttpRequest, exc: Rejected) -> HttpResponse:
        return answer(request, 400, error_body(exc.error.message, exc.error.field))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__  # the body parser's own refusal, which ninja wraps in a 400
        if isinstance(cause, BodyError):
            return answer(request, cause.status, error_body(cause.message, cause.field))
        if isinstance(cause, RequestError):
            return answer(request, 400, error_body(cause.message, cause.field))
        return answer(request, exc.status_code, error_body(str(exc)))

    @api.exception_handler(BodyError)
    def body_error(request: HttpRequest, exc: BodyError) -> HttpResponse:
        return answer(request, exc.status, error_body(exc.message, exc.field))

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        from django.conf import settings

        return answer(request, 413, error_body(f"body larger than {settings.API_MAX_BODY_BYTES} bytes", "body"))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return answer(request, 401, error_body("missing token: send 'Authorization: Bearer <token>'"))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return answer(request, 404, error_body(str(exc) or "not found"))

    @api.exception_handler(IdempotencyConflict)
    def conflict(request: HttpRequest, exc: IdempotencyConflict) -> HttpResponse:
        return answer(request, 422, error_body(exc.message, exc.field, differing=exc.differing))

    @api.exception_handler(BrokerUnavailable)
    def broker_down(request: HttpRequest, exc: BrokerUnavailable) -> HttpResponse:
        return answer(request, 503, error_body(
            "notification recorded but not yet published; retry with the same Idempotency-Key"))

    def outage(request: HttpRequest, exc: Exception) -> HttpResponse:
        """PostgreSQL or Redis unreachable: 503, so the caller retries (with the same Idempotency-Key), not a 500."""
        log.warning("API request answered 503: %s unreachable (%s)", _dependency(exc), type(exc).__name__)
        forget_broken_connections()
        response = answer(request, 503, error_body(f"{_dependency(exc)} is unavailable; retry shortly"
                                                   " (with the same Idempotency-Key)"))
        response["Retry-After"] = "1"
        return response

    for kind in OUTAGES:
        api.add_exception_handler(kind, outage)


def _dependency(exc: Exception) -> str:
    return "Redis" if type(exc).__module__.startswith("redis") else "PostgreSQL"
