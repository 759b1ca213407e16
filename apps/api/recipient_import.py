"""POST /api/recipient-imports (manage_recipients): a bulk import of recipients, the body streamed into
apps/audience/bulk_import.py (CSV with a header, or JSON lines); the answer is its report.

The body is read as it comes (never whole into memory; under ASGI Django spools it to a temporary file
past FILE_UPLOAD_MAX_MEMORY_SIZE). Rows are checked in this process; the command `manage.py
import_recipients` does the same with several processes, for the largest files.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema

from apps.audience.bulk_import import ImportRefused, import_recipients
from apps.delivery.models import ApiScope

from .auth import scoped
from .body import check_request, too_large
from .errors import ApiError
from .schemas import AUTH_ERRORS, ErrorOut

router = Router(tags=["recipients"])
CONTENT_TYPES = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
                 "application/x-jsonlines": "jsonl"}
LISTED = 1000


class RejectOut(Schema):
    line: int
    reason: str
    field: str


class ImportOut(Schema):
    lines: int = Field(description="Lines read, the CSV header included.")
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejects: list[RejectOut] = Field(description=f"The first {LISTED} rejected lines, by line number.")
    seconds: float


@router.post("/recipient-imports", auth=scoped(ApiScope.MANAGE_RECIPIENTS), summary="Import recipients in bulk",
             response={200: ImportOut, **AUTH_ERRORS, 400: ErrorOut, 413: ErrorOut, 415: ErrorOut},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/x-ndjson": {"schema": {"type": "string"}}}}})
def import_batch(request: HttpRequest) -> dict:
    """Upsert recipients by external_id from a CSV (header naming some of external_id, name, email, phone,
    timezone, locale) or JSON lines (one object a line). Given fields are set, others kept. Bad lines are
    reported (line, reason, field) and the rest imported; a refused file imports nothing."""
    limit = settings.IMPORT_MAX_BYTES
    fmt = CONTENT_TYPES[check_request(request, CONTENT_TYPES, limit)]
    try:
        report = import_recipients(_Limited(request, limit), fmt).as_dict()
    except ImportRefused as exc:
        raise ApiError(400, exc.message, exc.field) from None
    report["rejects"] = report["rejects"][:LISTED]
    return report


class _Limited:
    """The request body as a stream, refused past `limit` bytes (a chunked upload has no Content-Length)."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        self.request, self.limit, self.read_so_far = request, limit, 0

    def read(self, size: int) -> bytes:
        data = self.request.read(size)
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise too_large(self.limit)
        return data
