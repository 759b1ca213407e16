"""The end user's inbox: list, mark read, and a live stream (server-sent events).

Authenticated as the user with a recipient token (apps.audience.tokens). Errors are JSON 4xx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.audience.models import Recipient
from apps.audience.tokens import as_recipient
from apps.delivery.views import error

from .models import InboxMessage
from .store import live_channel, redis_client

PAGE_SIZE = 50
KEEP_ALIVE_SECONDS = 15.0




@require_http_methods(["GET"])
@as_recipient
def inbox(request: HttpRequest, recipient: Recipient) -> JsonResponse:
    """Newest first; ?before=<id> pages back, ?unread=1 keeps the unread ones."""
    messages = InboxMessage.objects.filter(recipient=recipient).order_by("-id")
    before = request.GET.get("before")
    if before is not None:
        if not before.isdigit():
            return error(400, "before must be a message id", "before")
        messages = messages.filter(id__lt=int(before))
    if request.GET.get("unread") in ("1", "true"):
        messages = messages.filter(read_at__isnull=True)
    page = [m.as_json() for m in messages[:PAGE_SIZE]]
    unread = InboxMessage.objects.filter(recipient=recipient, read_at__isnull=True).count()
    return JsonResponse({"messages": page, "unread": unread})


@csrf_exempt
@require_http_methods(["POST"])
@as_recipient
def mark_read(request: HttpRequest, recipient: Recipient, message_id: int) -> JsonResponse:
    updated = InboxMessage.objects.filter(recipient=recipient, pk=message_id).update(
        read_at=timezone.now())
    if not updated:
        return error(404, f"no message {message_id} in this inbox")
    return JsonResponse({"id": message_id, "read": True})


@csrf_exempt
@require_http_methods(["POST"])
@as_recipient
def mark_all_read(request: HttpRequest, recipient: Recipient) -> JsonResponse:
    count = InboxMessage.objects.filter(recipient=recipient, read_at__isnull=True).update(read_at=timezone.now())
    return JsonResponse({"marked_read": count})


@require_http_methods(["GET"])
@as_recipient
def stream(request: HttpRequest, recipient: Recipient) -> StreamingHttpResponse:
    """Server-sent events: one `message` event per new inbox message. Reconnects resume from Last-Event-ID."""
    last_id = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    if last_id and not last_id.isdigit():
        return error(400, "Last-Event-ID must be a message id")
    response = StreamingHttpResponse(_events(recipient.pk, int(last_id or 0)), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _events(recipient_id: int, last_id: int) -> Iterator[str]:
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live_channel(recipient_id))  # before the catch-up, so nothing falls in between
    try:
        yield "retry: 3000\n\n"
        deadline = time.monotonic() + settings.INBOX_STREAM_MAX_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if last_id:
                for message in InboxMessage.objects.filter(recipient_id=recipient_id, id__gt=last_id).order_by("id"):
                    last_id = message.pk
                    quiet_since = time.monotonic()
                    yield f"id: {message.pk}\nevent: message\ndata: {json.dumps(message.as_json())}\n\n"
            ping = pubsub.get_message(timeout=KEEP_ALIVE_SECONDS)
            if ping is None:  # a timeout, or the subscription's own confirmation
                if time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
            elif not last_id:
                last_id = int(ping["data"]) - 1  # first live message: fetch it and what follows
    finally:
        pubsub.close()
