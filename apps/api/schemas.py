"""Schemas every router shares: the error body and the error answers an operation documents."""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    error: str
    field: str | None = None
    scope: str | None = None
    retry_after: int | None = None
    differing: list[str] | None = None


# The refusals any operation behind an API key may answer, for its `response=` (merge in its own 2xx):
# response={200: RecipientOut, **AUTH_ERRORS, 404: ErrorOut}
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}
BODY_ERRORS: dict[int, type[Schema]] = {400: ErrorOut, 413: ErrorOut, 415: ErrorOut}
