"""How the API reads a request body: the one parser ninja uses, built on the checks every source shares
(apps/core/json_checks.py: NUL characters, nesting, non-finite numbers), plus HTTP's own, judged
before the body is read (`check_request`, also the bulk import's): 400 for a Content-Length that is not
a number, 413 over the limit (NOTIFY_API_MAX_BODY_BYTES for JSON), 415 for a content type not taken."""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.http import HttpRequest
from ninja.parser import Parser

from apps.core import json_checks

JSON = "application/json"


class BodyError(ValueError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def too_large(limit: int) -> BodyError:
    return BodyError(413, f"body larger than {limit} bytes", "body")


def check_request(request: HttpRequest, content_types: Collection[str], limit: int) -> str:
    """Refuse a request from its headers alone (Content-Length, then Content-Type); returns its content type.
    A body without Content-Length (chunked) is the reader's to bound: raise too_large(limit) past it."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise BodyError(400, "Content-Length is not a number", "Content-Length") from None
    if length > limit:
        raise too_large(limit)
    content_type = request.content_type or ""
    if content_type not in content_types:
        wanted = next(iter(content_types)) if len(content_types) == 1 else f"one of {', '.join(content_types)}"
        raise BodyError(415, f"send Content-Type: {wanted}", "Content-Type")
    return content_type


class CheckedJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> object:
        check_request(request, (JSON,), settings.API_MAX_BODY_BYTES)
        if len(request.body) > settings.API_MAX_BODY_BYTES:
            raise too_large(settings.API_MAX_BODY_BYTES)
        return json_checks.decode(request.body)
