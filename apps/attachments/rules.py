"""What an attachment may be: its size limit, the allowed content types, a file name safe in a MIME header.
Every refusal names the file and what is wrong, with the HTTP status the API answers."""

from __future__ import annotations

import mimetypes
import re

from django.conf import settings


class Refused(Exception):  # noqa: N818 - a refusal of the upload, answered as a 4xx
    def __init__(self, status: int, message: str, field: str) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"\\/]")


def max_bytes() -> int:
    return settings.ATTACHMENT_MAX_BYTES


def too_large(filename: str) -> Refused:
    return Refused(413, f"{filename} is larger than the limit of {max_bytes()} bytes", "body")


def check_filename(filename: str | None) -> str:
    """The name as the recipient will see it: no path, no control characters or quotes, at most 200 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or _UNSAFE.search(name) or name in (".", "..") or len(name) > 200:
        raise Refused(400, "filename: 1..200 characters, no path, quotes or control characters", "filename")
    return name


def check_content_type(content_type: str | None, filename: str = "") -> str:
    """The declared type (parameters dropped, lower case) if the allow-list has it."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared in ("", "application/octet-stream") and filename:
        declared = (mimetypes.guess_type(filename)[0] or declared).lower()
    allowed = settings.ATTACHMENT_CONTENT_TYPES
    if declared not in allowed:
        shown = declared[:100].encode("ascii", "replace").decode() or "(none)"
        raise Refused(415, f"{filename or 'the file'}: content type {shown!r} is not allowed"
                           f" (allowed: {', '.join(allowed)})", "Content-Type")
    return declared


def is_inline(size: int) -> bool:
    """Small files go in the email as MIME parts; larger ones as a signed link that expires."""
    return size <= settings.ATTACHMENT_INLINE_MAX_BYTES
