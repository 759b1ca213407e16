"""POST /api/attachments (manage_attachments): upload one file, the body as it comes (streamed, never whole in
memory), its type in Content-Type and its name in ?filename=; GET /api/attachments/{id}: its facts (the key's
own files only). A notification names the ids in "attachments"."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status

from apps.api.auth import scoped
from apps.api.errors import ApiError
from apps.api.schemas import AUTH_ERRORS, ErrorOut
from apps.core.json_checks import BIGINT_MAX
from apps.delivery.models import ApiScope

from . import rules, store
from .models import Attachment

log = logging.getLogger(__name__)
router = Router(tags=["attachments"])


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int = Field(description="Bytes.")
    sha256: str
    inline: bool = Field(description="Sent as a MIME part; false: as a signed link that expires.")
    created_at: str


def _out(attachment: Attachment) -> dict:
    return {"id": attachment.pk, "filename": attachment.filename, "content_type": attachment.content_type,
            "size": attachment.size, "sha256": attachment.sha256, "inline": rules.is_inline(attachment.size),
            "created_at": attachment.created_at.isoformat()}


def _binary_body() -> dict:
    return {"requestBody": {"required": True, "content": {
        kind: {"schema": {"type": "string", "format": "binary"}} for kind in settings.ATTACHMENT_CONTENT_TYPES}}}


@router.post("/attachments", auth=scoped(ApiScope.MANAGE_ATTACHMENTS), summary="Upload an attachment",
             response={201: AttachmentOut, **AUTH_ERRORS, 400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 503: ErrorOut},
             openapi_extra=_binary_body())
def upload(request: HttpRequest, filename: str = Query(..., min_length=1, max_length=200,
                                                        description="The name the recipient sees.")) -> Status:
    """The body is the file. 413 past NOTIFY_ATTACHMENT_MAX_BYTES, 415 for a type outside
    NOTIFY_ATTACHMENT_CONTENT_TYPES; both name the file."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number", "Content-Length") from None
    try:
        name = rules.check_filename(filename)
        rules.check_content_type(request.content_type, name)
        if length > rules.max_bytes():  # refused before a byte is read
            raise rules.too_large(name)
        attachment = store.save(request.read, filename, request.content_type or "", api_key=request.auth,
                                uploaded_by=f"api key {request.auth.name}")
    except rules.Refused as exc:
        raise ApiError(exc.status, exc.message, exc.field) from None
    except store.STORAGE_ERRORS as exc:  # the storage (a disk, S3) is unreachable or full
        log.warning("attachment upload answered 503: storage unavailable (%s)", type(exc).__name__)
        raise ApiError(503, "the attachment storage is unavailable; retry shortly") from None
    return Status(201, _out(attachment))


@router.get("/attachments/{attachment_id}", auth=scoped(ApiScope.MANAGE_ATTACHMENTS), summary="An attachment",
            response={200: AttachmentOut, **AUTH_ERRORS, 400: ErrorOut, 404: ErrorOut})
def attachment_facts(request: HttpRequest, attachment_id: int = Path(..., ge=1, le=BIGINT_MAX)) -> dict:
    """Only the key's own uploads: another key's is a 404 like one that does not exist."""
    attachment = Attachment.objects.filter(pk=attachment_id, api_key=request.auth).first()
    if attachment is None:
        raise ApiError(404, f"no attachment {attachment_id}", "attachment_id")
    return _out(attachment)
