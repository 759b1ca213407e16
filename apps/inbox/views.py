"""The end user's inbox as a live stream (server-sent events); listing and marking read are on the API
(apps/api/me.py).

Authenticated as the user with a recipient token (apps.audience.tokens). Errors are JSON 4xx.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.audience.tokens import InvalidToken, recipient_from_request

from .models import InboxMessage
from .store import live_channel

T = TypeVar("T")


@csrf_exempt  # a token in the request authenticates it, never a cookie: so a POST is a 405, not a CSRF 403
@require_http_methods(["GET"])
async def stream(request: HttpRequest) -> HttpResponse:
    """Server-sent events: one `message` event per new inbox message. Reconnects resume from Last-Event-ID.

    Async, so under the ASGI web tier (notifications_project/asgi.py) an open stream holds no worker and
    no thread: it waits on Redis pub/sub in the event loop, and touches PostgreSQL only to read new rows."""
    try:
        recipient = await _in_thread(recipient_from_request)(request, True)
    except InvalidToken as exc:
        return JsonResponse({"error": str(exc)}, status=401)
    last_id = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    if last_id and not last_id.isdigit():
        return JsonResponse({"error": "Last-Event-ID must be a message id", "field": "Last-Event-ID"}, status=400)
    response = StreamingHttpResponse(_events(recipient.pk, int(last_id) if last_id else None),
                                     content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _in_thread(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run a database call in the shared thread pool, then close that thread's connection: an open stream
    holds neither a thread nor a PostgreSQL connection between its (rare) reads."""

    def call(*args: object) -> T:
        try:
            return function(*args)
        finally:
            connections.close_all()

    return sync_to_async(call, thread_sensitive=False)


def _messages_after(recipient_id: int, last_id: int) -> list[dict]:
    return [m.as_json() for m in InboxMessage.objects.filter(recipient_id=recipient_id, id__gt=last_id).order_by("id")]


async def _events(recipient_id: int, last_id: int | None) -> AsyncIterator[str]:
    """last_id None: no catch-up until the first live message, which names where to start."""
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    clock = asyncio.get_running_loop().time
    keep_alive = settings.INBOX_KEEP_ALIVE_SECONDS
    try:
        await pubsub.subscribe(live_channel(recipient_id))  # before the catch-up, so nothing falls in between
        yield "retry: 3000\n\n"
        deadline = clock() + settings.INBOX_STREAM_MAX_SECONDS
        quiet_since = clock()
        while (left := deadline - clock()) > 0:
            if last_id is not None:
                for message in await _in_thread(_messages_after)(recipient_id, last_id):
                    last_id = message["id"]
                    quiet_since = clock()
                    yield f"id: {last_id}\nevent: message\ndata: {json.dumps(message)}\n\n"
            ping = await pubsub.get_message(timeout=min(keep_alive, left))
            if ping is None:  # a timeout, or the subscription's own confirmation
                if clock() - quiet_since >= keep_alive:  # proxies cut streams that stay silent
                    quiet_since = clock()
                    yield ": keep-alive\n\n"
            elif last_id is None:
                last_id = int(ping["data"]) - 1  # first live message: fetch it and what follows
    finally:
        await pubsub.aclose()
        await client.aclose()
