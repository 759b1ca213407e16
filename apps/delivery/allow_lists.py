"""What a sender may send: the allow-lists an API key or an event source holds (models.SendLimits).

One check for both doors: the HTTP API answers a refusal with 403 naming the field, the events bridge
dead-letters the event with the same words (reason kind "unauthorized"). The priority is never the
sender's to choose: it is the category's, read from the database.
"""

from __future__ import annotations

from . import audience_kinds
from .models import SendLimits
from .requests import NotificationRequest


class NotAllowed(Exception):
    """The sender may not make this request; `field` names what it may not send."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_allowed(limits: SendLimits, request: NotificationRequest, who: str) -> None:
    """Raise NotAllowed unless the request is within the allow-lists and largest audience of `limits`
    (`who` names the sender in the message: "this API key", "source 'orders'")."""
    allowed = list(limits.allowed_categories.values_list("slug", flat=True))
    if allowed and request.category.slug not in allowed:
        raise NotAllowed("category", f"{who} may not send category {request.category.slug!r}")
    kind = next(iter(request.audience))
    if limits.allowed_audience_kinds and kind not in limits.allowed_audience_kinds:
        raise NotAllowed(f"audience.{kind}", f"{who} may not target a {kind!r} audience")
    limit = limits.max_audience
    if limit is not None and audience_size(request.audience, limit + 1) > limit:
        raise NotAllowed(f"audience.{kind}", f"audience larger than the largest {who} may target ({limit} recipients)")


def audience_size(audience: dict, at_most: int) -> int:
    """Recipients an audience names before preferences, counted up to at_most (a LIMIT in the count's
    subquery, so a small limit stays cheap on a topic of 2.5M fans)."""
    from apps.audience.models import Follow, Recipient, Segment

    kind, value = next(iter(audience.items()))
    if kind == "slice":  # at most the audience it is part of
        return audience_size(value["of"], at_most)
    if kind == "recipients":
        return min(len(set(value)), at_most)
    if kind == "topic":
        rows = Follow.objects.filter(topic__slug=value)
    elif kind == "segment":
        rows = Segment.objects.get(pk=value).recipients()
    elif kind in audience_kinds.KINDS:
        rows = audience_kinds.KINDS[kind].rows(value)
    else:
        rows = Recipient.objects.filter(is_active=True)
    return rows.values("pk")[:at_most].count()
