"""How the API reads a request body: the one parser ninja uses, built on the checks every source shares
(apps/core/json_checks.py: NUL characters, nesting, non-finite numbers), plus HTTP's own: 413 over
NOTIFY_API_MAX_BODY_BYTES, judged from Content-Length before the body is read, and 415 for a content
type other than JSON."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.parser import Parser

from apps.core import json_checks


class BodyError(ValueError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def check_headers(request: HttpRequest) -> None:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise BodyError(400, "Content-Length is not a number", "Content-Length") from None
    if length > settings.API_MAX_BODY_BYTES:
        raise BodyError(413, f"body larger than {settings.API_MAX_BODY_BYTES} bytes", "body")


class CheckedJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> object:
        check_headers(request)
        if len(request.body) > settings.API_MAX_BODY_BYTES:
            raise BodyError(413, f"body larger than {settings.API_MAX_BODY_BYTES} bytes", "body")
        if request.content_type != "application/json":
            raise BodyError(415, "send Content-Type: application/json", "Content-Type")
        return json_checks.decode(request.body)
