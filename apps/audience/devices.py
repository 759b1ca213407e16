"""Registering and unregistering push tokens, and following topics, for the API.

A token is one row whatever happens (the unique constraint on token): registered again under another
recipient it moves to them, in one INSERT ... ON CONFLICT DO UPDATE, so two registrations racing for one
token still leave one row. An unregistered token, like one a provider reported invalid
(apps/delivery/contacts.deactivate_tokens), is kept inactive and no longer sent to; registering it again
makes it active.
"""

from __future__ import annotations

from django.db import connection, transaction

from .models import Device, Follow, Recipient, Topic

UNREGISTERED = "unregistered by the client app"

_UPSERT = """
WITH previous AS (SELECT recipient_id FROM audience_device WHERE token = %(token)s)
INSERT INTO audience_device (recipient_id, platform, token, app, is_active, created_at, deactivated_reason)
VALUES (%(recipient)s, %(platform)s, %(token)s, %(app)s, true, now(), '')
ON CONFLICT (token) DO UPDATE SET recipient_id = EXCLUDED.recipient_id, platform = EXCLUDED.platform,
    app = EXCLUDED.app, is_active = true, deactivated_reason = ''
RETURNING id, (SELECT recipient_id FROM previous)
"""


def register(recipient: Recipient, platform: str, token: str, app: str) -> tuple[Device, str]:
    """The device and what happened: "created", "updated" (same recipient) or "moved" (from another)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_UPSERT, {"recipient": recipient.pk, "platform": platform, "token": token, "app": app})
        device_id, previous = cursor.fetchone()
    outcome = "created" if previous is None else "updated" if previous == recipient.pk else "moved"
    return Device.objects.get(pk=device_id), outcome


def unregister(recipient: Recipient, token: str) -> bool:
    """False when the token is not one of this recipient's."""
    return bool(Device.objects.filter(recipient=recipient, token=token)
                .update(is_active=False, deactivated_reason=UNREGISTERED))


def follow(recipient: Recipient, topic: Topic) -> bool:
    """True when the follow is new."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO audience_follow (topic_id, recipient_id, created_at) VALUES (%s, %s, now())"
                       " ON CONFLICT (topic_id, recipient_id) DO NOTHING", [topic.pk, recipient.pk])
        return cursor.rowcount == 1


def unfollow(recipient: Recipient, topic: Topic) -> bool:
    deleted, _ = Follow.objects.filter(recipient=recipient, topic=topic).delete()
    return bool(deleted)
