"""Who may call the service API, and what each API key may do.

A key authenticates with `Authorization: Bearer <token>` (401 without a valid one), must hold the
endpoint's scope (403 naming it), and is held to its request rate (429 with Retry-After). Sending is
further held to the key's allow-lists of categories and audience kinds and its largest audience
(403 naming the field). Every refusal comes before anything is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import progress
from .models import ApiKey, ApiScope
from .requests import NotificationRequest

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60

# KEYS: the key's counter for this window. Returns {count so far, seconds left in the window}.
_COUNT = progress.script("""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
""")
_redis_down = False


class Refusal(Exception):
    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}
        self.headers: dict[str, str] = {}

    def response(self) -> JsonResponse:
        answer = JsonResponse(self.body, status=self.status)
        for name, value in self.headers.items():
            answer[name] = value
        return answer


def authenticate(request: HttpRequest) -> ApiKey:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "missing token: send 'Authorization: Bearer <token>'")
    api_key = ApiKey.objects.filter(token_sha256=ApiKey.hash(token.strip()), is_active=True).first()
    if api_key is None:
        raise Refusal(401, "invalid token")
    return api_key


def api_key_required(scope: ApiScope) -> Callable:
    """The view is called as view(request, api_key, ...) once the key is valid, holds `scope` and is
    within its rate."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            try:
                api_key = authenticate(request)
                if scope not in api_key.scopes:
                    raise Refusal(403, f"this API key lacks the scope {scope.value!r}", scope=scope.value)
                check_rate(api_key)
            except Refusal as refusal:
                return refusal.response()
            return view(request, api_key, *args, **kwargs)

        return wrapper

    return decorate


def check_rate(api_key: ApiKey) -> None:
    """At most rate_per_minute requests per key in each minute (a fixed window in Redis). With Redis
    unreachable the API stays up unlimited, logged once."""
    global _redis_down
    limit = api_key.rate_per_minute or settings.API_RATE_PER_MINUTE
    if not limit:
        return
    try:
        count, ttl = _COUNT(keys=[progress.key(f"api-rate:{api_key.pk}")], args=[WINDOW_SECONDS],
                            client=progress.client())
    except redis.RedisError as exc:
        if not _redis_down:
            log.warning("API rate limits not applied: Redis unreachable (%s)", type(exc).__name__)
        _redis_down = True
        return
    _redis_down = False
    if count > limit:
        refusal = Refusal(429, f"rate limit of {limit} requests a minute exceeded", retry_after=max(int(ttl), 1))
        refusal.headers["Retry-After"] = str(max(int(ttl), 1))
        raise refusal


def check_send(api_key: ApiKey, request: NotificationRequest) -> None:
    """The key's allow-lists and largest audience, for a request that parse_request accepted."""
    allowed = list(api_key.allowed_categories.values_list("slug", flat=True))
    if allowed and request.category.slug not in allowed:
        raise Refusal(403, f"this API key may not send category {request.category.slug!r}", field="category")
    kind = next(iter(request.audience))
    if api_key.allowed_audience_kinds and kind not in api_key.allowed_audience_kinds:
        raise Refusal(403, f"this API key may not target a {kind!r} audience", field=f"audience.{kind}")
    limit = api_key.max_audience
    if limit is not None and audience_size(request.audience, limit + 1) > limit:
        raise Refusal(403, f"audience larger than this API key's largest ({limit} recipients)",
                      field=f"audience.{kind}")


def audience_size(audience: dict, at_most: int) -> int:
    """Recipients an audience names before preferences, counted up to at_most (a LIMIT in the count's
    subquery, so a small limit stays cheap on a topic of 2.5M fans)."""
    from apps.audience.models import Follow, Recipient, Segment
    from apps.campaigns.models import CampaignMember

    kind, value = next(iter(audience.items()))
    if kind == "slice":  # at most the audience it is part of
        return audience_size(value["of"], at_most)
    if kind == "recipients":
        return min(len(set(value)), at_most)
    if kind == "topic":
        rows = Follow.objects.filter(topic__slug=value)
    elif kind == "segment":
        rows = Segment.objects.get(pk=value).recipients()
    elif kind == "campaign":
        rows = CampaignMember.objects.filter(campaign_id=value)
    else:
        rows = Recipient.objects.filter(is_active=True)
    return rows.values("pk")[:at_most].count()
