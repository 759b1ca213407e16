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

from apps.core import redis_client

from .allow_lists import NotAllowed, audience_size, check_allowed
from .models import ApiKey, ApiScope
from .requests import NotificationRequest

__all__ = ["Refusal", "api_key_required", "audience_size", "authenticate", "check_rate", "check_send"]

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60

# KEYS: the key's counter for this window. Returns {count so far, seconds left in the window}.
_COUNT = redis_client.script("""
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
        count, ttl = _COUNT(keys=[redis_client.key(f"api-rate:{api_key.pk}")], args=[WINDOW_SECONDS],
                            client=redis_client.client())
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
    """The key's allow-lists and largest audience, for a request that parse_request accepted (403 naming the
    field). The same check as an event source's (allow_lists.check_allowed)."""
    try:
        check_allowed(api_key, request, "this API key")
    except NotAllowed as refused:
        raise Refusal(403, str(refused), field=refused.field) from None
