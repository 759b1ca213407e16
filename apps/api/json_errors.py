"""Everything under /api/ answers JSON, also where no API operation ran: a path with no operation (Django's
404 page), a method the path does not take (ninja's and require_http_methods' bare 405), a refused Host
(Django's 400 page), or an unhandled error (its 500 page). A middleware rewrites such an answer, whatever
produced it, into the API's own error shape ({"error": ...}, apps/api/errors.py), keeping its status and
the headers a caller acts on (Allow, Retry-After). Answers that are JSON already pass as they are."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase, JsonResponse

from .errors import error_body

PREFIX = "/api"
KEPT_HEADERS = ("Allow", "Retry-After")


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(f"{PREFIX}/")


def message(request: HttpRequest, response: HttpResponseBase) -> str:
    status = response.status_code
    if status == 404:
        return f"not found: no operation at this path (the operations are listed in {PREFIX}/openapi.json)"
    if status == 405:
        allowed = ", ".join(sorted(m.strip() for m in response.get("Allow", "").split(",") if m.strip()))
        return f"method {request.method[:20]!r} not allowed here; allowed: {allowed or 'none'}"
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


def as_json(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The answer itself, unless it is an error under /api/ that is not JSON: then the same error as JSON."""
    if response.status_code < 400 or not is_api_path(request.path_info) \
            or response.get("Content-Type", "").startswith("application/json"):
        return response
    answer = JsonResponse(error_body(message(request, response)), status=response.status_code)
    if response.status_code == 405 and response.has_header("Allow"):
        answer["Allow"] = ", ".join(sorted(m.strip() for m in response["Allow"].split(",") if m.strip()))
    for name in KEPT_HEADERS:
        if response.has_header(name) and not answer.has_header(name):
            answer[name] = response[name]
    return answer


class JsonErrorsMiddleware:
    """Sync and async alike, so the async views under /api/ (the inbox stream) keep running in the event loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        return as_json(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        return as_json(request, await self.get_response(request))
