"""Per-user frequency caps (Category.daily_cap): check and count a whole batch in one Redis call.

The window is the UTC day. Per user and category the store keeps the ids of the notifications
already counted today, so a retried or redelivered batch is admitted again without using another
slot, and a notification sent on several channels counts once. Users are packed 128 to a hash
(small hashes are stored compactly), so 2.5M users cost about 20k keys a day.

The store can be its own Redis (THROTTLE_REDIS_URL). If it cannot be reached, `admit` raises
StoreUnavailable: callers defer capped sends rather than send past the cap, and it is logged once
per outage, not once per batch.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from apps.core.redis_client import script

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
USERS_PER_HASH = 128

# KEYS: the hash of each recipient (parallel to the ids). ARGV: cap, notification id, ttl, recipient ids...
# Returns the ids refused (already at the cap today).
_ADMIT = """
local cap, n, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local refused = {}
for i = 1, #KEYS do
  local rid = ARGV[i + 3]
  local seen = redis.call('HGET', KEYS[i], rid)
  if not seen then
    if cap > 0 then
      redis.call('HSET', KEYS[i], rid, n)
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      refused[#refused + 1] = rid
    end
  elseif not string.find(',' .. seen .. ',', ',' .. n .. ',', 1, true) then
    local _, commas = string.gsub(seen, ',', '')
    if commas + 1 >= cap then
      refused[#refused + 1] = rid
    else
      redis.call('HSET', KEYS[i], rid, seen .. ',' .. n)
    end
  end
end
return refused
"""


class StoreUnavailable(RuntimeError):
    pass


_admit = script(_ADMIT)
_client: redis.Redis | None = None
_outage_logged = False


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.THROTTLE_REDIS_URL, socket_timeout=2, socket_connect_timeout=1)
    return _client


def window_end(now: float) -> float:
    """When the current cap window (the UTC day) ends, in epoch seconds."""
    return (now // DAY_SECONDS + 1) * DAY_SECONDS


def admit(category: str, cap: int, notification_id: int, recipient_ids: list[int], now: float) -> set[int]:
    """Count the recipients that may receive this notification now; returns the ones refused (over the cap)."""
    if not recipient_ids:
        return set()
    day = int(now // DAY_SECONDS)
    prefix = f"{settings.REDIS_KEY_PREFIX}cap:{category}:{day}:"
    keys = [f"{prefix}{rid // USERS_PER_HASH}" for rid in recipient_ids]
    try:
        refused = _admit(keys=keys, args=[cap, notification_id, 2 * DAY_SECONDS, *recipient_ids], client=client())
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        note_outage(exc)
        raise StoreUnavailable(str(exc)) from None
    note_recovery()
    return {int(r) for r in refused}


def note_outage(exc: Exception) -> None:
    """Log an unreachable throttle store once per outage."""
    global _outage_logged
    if not _outage_logged:
        _outage_logged = True
        log.error("throttle store unreachable (%s): capped categories are deferred, others go on", type(exc).__name__)


def note_recovery() -> None:
    global _outage_logged
    if _outage_logged:
        _outage_logged = False
        log.warning("throttle store reachable again")
