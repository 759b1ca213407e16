"""Validation of a notification request, shared by notify(), the signal, the HTTP API and raw Kafka events."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.core.channels import Channel
from apps.core.json_checks import RequestError, check_storable, is_int
from apps.core.safe_text import syntax_problem
from apps.preferences.models import Category

from . import attachment_hooks, audience_kinds
from .models import MAX_RECIPIENT_ID

MAX_RECIPIENTS_INLINE = 10_000
MAX_CONTEXT_CHARS = 64 * 1024

__all__ = ["MAX_RECIPIENTS_INLINE", "NotificationRequest", "RequestError", "parse_request"]


@dataclass
class NotificationRequest:
    category: Category
    channels: list[str]
    audience: dict
    title: str = ""
    body: str = ""
    context: dict = field(default_factory=dict)
    idempotency_key: str | None = None
    template_id: int | None = None
    attachments: list[int] = field(default_factory=list)  # apps/attachments ids, for the email channel


def parse_request(data: object, idempotency_key: str | None = None) -> NotificationRequest:
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    check_storable(data)
    unknown = sorted(set(data) - {"category", "channels", "audience", "title", "body", "context", "idempotency_key",
                                  "template_id", "attachments"})
    if unknown:
        raise RequestError(unknown[0], "unknown field")
    slug = data.get("category")
    if not isinstance(slug, str) or not slug:
        raise RequestError("category", "required, a category slug")
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        raise RequestError("category", f"unknown category {slug!r}")
    channels = data.get("channels")
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise RequestError("channels", f"required, a non-empty list of {Channel.values}")
    for channel in channels:
        if channel not in Channel.values:
            raise RequestError("channels", f"unknown channel {channel!r}")
    audience = _parse_audience(data.get("audience"))
    title, body = data.get("title", ""), data.get("body", "")
    if not isinstance(title, str) or len(title) > 200:
        raise RequestError("title", "a string of at most 200 characters")
    if not isinstance(body, str) or len(body) > 4000:
        raise RequestError("body", "a string of at most 4000 characters")
    for name, text in (("title", title), ("body", body)):
        problem = syntax_problem(text)
        if problem:
            raise RequestError(name, problem)
    template_id = data.get("template_id")
    if template_id is not None:
        from apps.content.models import Template

        if not is_int(template_id) or not Template.objects.filter(pk=template_id).exists():
            raise RequestError("template_id", f"unknown template {template_id!r}")
    elif not title and not body:
        raise RequestError("body", "title or body is required")
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise RequestError("context", "must be an object")
    if len(repr(context)) > MAX_CONTEXT_CHARS:
        raise RequestError("context", f"larger than {MAX_CONTEXT_CHARS} characters")
    key = idempotency_key or data.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise RequestError("idempotency_key", "a string of 1..200 characters")
    check_storable(key, "idempotency_key")  # it may come from a header rather than the body
    attachments = attachment_hooks.parse_ids(data["attachments"]) if data.get("attachments") is not None else []
    return NotificationRequest(category, list(dict.fromkeys(channels)), audience, title, body, context, key,
                               template_id, attachments)


def _parse_audience(audience: object, nested: bool = False) -> dict:
    if not isinstance(audience, dict) or len(audience) != 1:
        raise RequestError("audience", 'one of {"topic": slug}, {"recipients": [ids]}, {"segment": id}, {"all": true},'
                                       ' {"campaign": id}, {"slice": {"of": audience, "timezones": [names],'
                                       ' "share": [from, to]}}')
    kind, value = next(iter(audience.items()))
    if kind == "slice" and not nested:
        return {"slice": _parse_slice(value)}
    if kind == "topic":
        from apps.audience.models import Topic

        if not isinstance(value, str) or not Topic.objects.filter(slug=value).exists():
            raise RequestError("audience.topic", f"unknown topic {value!r}")
    elif kind == "recipients":
        if (not isinstance(value, list) or not value or len(value) > MAX_RECIPIENTS_INLINE
                or not all(is_int(v, 1, MAX_RECIPIENT_ID) for v in value)):
            raise RequestError("audience.recipients", f"a list of 1..{MAX_RECIPIENTS_INLINE} recipient ids"
                                                      f" (each 1..{MAX_RECIPIENT_ID})")
    elif kind == "segment":
        from apps.audience.models import Segment

        if not is_int(value) or not Segment.objects.filter(pk=value).exists():
            raise RequestError("audience.segment", f"unknown segment {value!r}")
    elif kind == "all":
        if value is not True:
            raise RequestError("audience.all", "must be true")
    elif kind in audience_kinds.KINDS:  # another app's, e.g. a campaign's uploaded list
        if not is_int(value) or not audience_kinds.KINDS[kind].exists(value):
            raise RequestError(f"audience.{kind}", f"unknown {kind} {value!r}")
    else:
        raise RequestError("audience", f"unknown audience kind {kind!r}")
    return {kind: value}


MAX_SLICE_TIMEZONES = 1000


def _parse_slice(value: object) -> dict:
    """Part of another audience: recipients whose timezone is one of `timezones` ("" is UTC) and/or whose
    id % 100 is in [from, to) (a campaign's local-time wave or A/B variant)."""
    if not isinstance(value, dict) or "of" not in value or not set(value) <= {"of", "timezones", "share"}:
        raise RequestError("audience.slice", 'an object {"of": audience, "timezones": [names], "share": [from, to]}')
    result = {"of": _parse_audience(value["of"], nested=True)}
    if "timezones" in value:
        zones = value["timezones"]
        if (not isinstance(zones, list) or not 0 < len(zones) <= MAX_SLICE_TIMEZONES
                or not all(isinstance(z, str) and len(z) <= 64 for z in zones)):
            raise RequestError("audience.slice.timezones", f"a list of 1..{MAX_SLICE_TIMEZONES} timezone names")
        result["timezones"] = zones
    if "share" in value:
        share = value["share"]
        if (not isinstance(share, list) or len(share) != 2 or not all(is_int(v, 0, 100) for v in share)
                or share[0] >= share[1]):
            raise RequestError("audience.slice.share", "[from, to] with 0 <= from < to <= 100")
        result["share"] = share
    return result
