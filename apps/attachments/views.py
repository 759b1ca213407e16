"""GET /attachments/<signed>: the file behind an email's attachment link.

On S3 the answer is a redirect to a presigned URL that lasts ATTACHMENT_PRESIGNED_SECONDS, so the web tier
does not carry large files; on the filesystem the file is streamed from storage in chunks.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from . import links, store
from .models import Attachment


def _refused(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@require_GET
def download(request: HttpRequest, token: str) -> HttpResponse:
    try:
        attachment = Attachment.objects.filter(pk=links.read_token(token)).first()
    except links.LinkRefused as exc:
        return _refused(str(exc), exc.status)
    if attachment is None:
        return _refused("This file is no longer available.", 404)
    storage = store.storage()
    if settings.ATTACHMENT_STORAGE == "s3":
        disposition = content_disposition_header(True, attachment.filename)
        url = storage.url(attachment.storage_key, expire=settings.ATTACHMENT_PRESIGNED_SECONDS,
                          parameters={"ResponseContentDisposition": disposition,
                                      "ResponseContentType": attachment.content_type})
        answer: HttpResponse = HttpResponseRedirect(url)
    else:
        answer = FileResponse(storage.open(attachment.storage_key, "rb"), as_attachment=True,
                              filename=attachment.filename, content_type=attachment.content_type)
    answer["Cache-Control"] = "private, no-store"
    answer["Referrer-Policy"] = "no-referrer"  # the link is the credential
    return answer
