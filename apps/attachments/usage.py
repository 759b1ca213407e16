"""Attachments in notifications: the checks a request's "attachments" field gets, the rows that tie them to
a notification, and the parts the email transport is given (apps/providers/base.Attachment)."""

from __future__ import annotations

from functools import partial

from django.conf import settings

from apps.core.json_checks import RequestError, is_int
from apps.providers.base import Attachment as Part

from . import links, rules, store
from .models import Attachment, NotificationAttachment

FIELD = "attachments"


def parse_ids(value: object) -> list[int]:
    """A request's attachment ids (raises RequestError naming the field): known ids, at most the setting's count."""
    most = settings.ATTACHMENTS_PER_MESSAGE
    if not isinstance(value, list) or len(value) > most or not all(is_int(v, 1) for v in value):
        raise RequestError(FIELD, f"a list of at most {most} attachment ids")
    ids = list(dict.fromkeys(value))
    known = set(Attachment.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise RequestError(FIELD, f"unknown attachment {unknown[0]}")
    return ids


def check_allowed(ids: list[int], api_key=None, event_source=None) -> None:  # noqa: ANN001
    """An API key sends only what it uploaded; raw Kafka events carry none (their source uploads nothing);
    this service's own code (notify(), the signal) may send any."""
    if not ids:
        return
    if event_source is not None:
        raise RequestError(FIELD, "not accepted in raw events: send through the HTTP API")
    if api_key is not None:
        others = (Attachment.objects.filter(pk__in=ids).exclude(api_key=api_key)
                  .order_by("pk").values_list("pk", flat=True).first())
        if others is not None:
            raise RequestError(FIELD, f"unknown attachment {others}")  # another key's is as if it did not exist


def attach(notification_id: int, ids: list[int]) -> None:
    NotificationAttachment.objects.bulk_create(
        NotificationAttachment(notification_id=notification_id, attachment_id=attachment_id, position=position)
        for position, attachment_id in enumerate(ids))


def ids_of(notification_id: int) -> list[int]:
    return list(NotificationAttachment.objects.filter(notification_id=notification_id).order_by("position")
                .values_list("attachment_id", flat=True))


def email_parts(notification_id: int, template_id: int | None) -> tuple[Part, ...]:
    """The notification's own attachments, then its template's; each small one read once per provider call,
    each large one a signed link made per call (so its expiry counts from the send)."""
    own = [row.attachment for row in NotificationAttachment.objects.select_related("attachment")
           .filter(notification_id=notification_id).order_by("position")]
    from_template = list(Attachment.objects.filter(templates=template_id).order_by("pk")) if template_id else []
    parts: list[Part] = []
    for attachment in dict.fromkeys(own + from_template):
        if rules.is_inline(attachment.size):
            parts.append(Part(attachment.filename, attachment.content_type, attachment.size,
                              read=partial(store.read_bytes, attachment.storage_key)))
        else:
            parts.append(Part(attachment.filename, attachment.content_type, attachment.size,
                              link=partial(links.download_url, attachment.pk)))
    return tuple(parts)
