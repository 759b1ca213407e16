"""Write in-app messages in bulk and announce them to live streams (Redis pub/sub, one channel per user)."""

from __future__ import annotations

import json

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.redis_client import client as redis_client


def live_channel(recipient_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}inbox:{recipient_id}"


def deliver(recipient_ids: list[int], title: str, body: str, data: dict) -> list[int]:
    """One row per recipient (one INSERT for the batch); returns the new message ids, in order."""
    if not recipient_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inbox_inboxmessage (recipient_id, title, body, data, created_at)"
            " SELECT r, %s, %s, %s::jsonb, %s FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(r, n) ORDER BY n"
            " RETURNING id", [title[:300], body, json.dumps(data), timezone.now(), recipient_ids])
        ids = [row[0] for row in cursor.fetchall()]
    pipe = redis_client().pipeline(transaction=False)
    for recipient_id, message_id in zip(recipient_ids, ids, strict=True):
        pipe.publish(live_channel(recipient_id), str(message_id))
    try:
        pipe.execute()
    except redis.RedisError:
        pass  # the rows are the record; a live stream that misses a ping catches up from Last-Event-ID
    return ids
