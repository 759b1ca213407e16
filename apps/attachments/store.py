"""Putting a file into the attachments storage and reading it back, streamed.

An upload is read in chunks into a spooled temporary file (memory up to SPOOL_BYTES, disk past it),
counted and hashed as it comes, refused as soon as it passes the size limit; the storage then copies it
in chunks (S3: a multipart upload through boto3). Nothing holds a whole large file in memory.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction

from . import rules
from .models import Attachment

try:
    from botocore.exceptions import BotoCoreError, ClientError

    STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)
except ImportError:  # S3 support not installed: the filesystem only
    STORAGE_ERRORS = (OSError,)

STORAGE_ALIAS = "attachments"
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 1024 * 1024


def storage() -> Storage:
    return storages[STORAGE_ALIAS]


def save(read: Callable[[int], bytes], filename: str, content_type: str, *, api_key=None,  # noqa: ANN001
         uploaded_by: str = "") -> Attachment:
    """Store what `read(n)` yields until it yields b"". Raises rules.Refused (too large, refused type,
    bad name) before anything is stored."""
    filename = rules.check_filename(filename)
    content_type = rules.check_content_type(content_type, filename)
    limit = rules.max_bytes()
    digest, size = hashlib.sha256(), 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        while chunk := read(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise rules.too_large(filename)
            digest.update(chunk)
            spool.write(chunk)
        if size == 0:
            raise rules.Refused(400, f"{filename} is empty", "body")
        spool.seek(0)
        key = storage().save(f"{uuid.uuid4().hex}", File(spool, name=filename))
    try:
        with transaction.atomic():
            return Attachment.objects.create(storage_key=key, filename=filename, content_type=content_type, size=size,
                                             sha256=digest.hexdigest(), api_key=api_key, uploaded_by=uploaded_by)
    except BaseException:
        storage().delete(key)  # no row, no file: nothing the platform does not know of is kept
        raise


def read_bytes(storage_key: str) -> bytes:
    """A small attachment's bytes, for a MIME part (the caller reads each once per provider call)."""
    with storage().open(storage_key, "rb") as handle:
        return handle.read()
