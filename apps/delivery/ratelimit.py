"""Per-provider send-rate limits, shared by every worker through Redis.

A GCRA bucket per provider: each send of n messages moves the bucket's "theoretical arrival time"
n intervals on; a send that would push it more than one second ahead waits. The buckets live in
the throttle store; while it is unreachable sends go on unlimited (the provider's own 429s still
slow them), logged once. A 429 from the provider
halves the rate, which then climbs back to the configured quota over RECOVERY_SECONDS (additive
increase, multiplicative decrease), so every worker backs off together and recovers together.
"""

from __future__ import annotations

import logging
import time

import redis

from apps.core.redis_client import key, script

from .throttle import client, note_outage, note_recovery

log = logging.getLogger(__name__)

BURST_SECONDS = 1.0
RECOVERY_SECONDS = 30.0
FLOOR_SHARE = 0.05  # never cut below 5% of the quota

# The rate now: the quota, or after a cut, the cut rate climbing back to the quota over `recovery` seconds.
_CURRENT_RATE = """
local function current_rate(quota, now, recovery)
  local v = redis.call('HMGET', KEYS[1], 'cut_rate', 'cut_at')
  if not v[1] then return quota end
  return math.min(quota, tonumber(v[1]) + (now - tonumber(v[2])) * quota / recovery)
end
"""

# KEYS: bucket hash. ARGV: n, quota per second, now, burst, recovery seconds.
# Returns the seconds to wait (0: the send may go now, and is counted).
_ACQUIRE = _CURRENT_RATE + """
local n, quota, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst, recovery = tonumber(ARGV[4]), tonumber(ARGV[5])
local rate = current_rate(quota, now, recovery)
local tat = math.max(tonumber(redis.call('HGET', KEYS[1], 'tat') or now), now)
local new_tat = tat + n / rate
if new_tat - now > burst then return tostring(new_tat - now - burst) end
redis.call('HSET', KEYS[1], 'tat', new_tat)
redis.call('EXPIRE', KEYS[1], 3600)
return '0'
"""
_acquire = script(_ACQUIRE)

# A 429: cut the current rate in half (not below the floor) and restart recovery from now.
_CUT = _CURRENT_RATE + """
local quota, now, recovery, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rate = math.max(current_rate(quota, now, recovery) / 2, quota * floor)
redis.call('HSET', KEYS[1], 'cut_rate', rate, 'cut_at', now)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(rate)
"""
_cut = script(_CUT)


def _bucket(provider: str) -> str:
    return key(f"rate:{provider}")


def acquire(provider: str, n: int, quota_per_s: float) -> float:
    """Count n sends against the provider's quota; returns 0, or the seconds to wait and ask again."""
    if quota_per_s <= 0:
        return 0.0
    try:
        wait = _acquire(keys=[_bucket(provider)], args=[n, quota_per_s, time.time(), BURST_SECONDS,
                                                        RECOVERY_SECONDS], client=client())
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        note_outage(exc)
        return 0.0
    note_recovery()
    return float(wait)


def wait_for(provider: str, n: int, quota_per_s: float, max_wait: float) -> float:
    """Block until the send may go, for at most max_wait seconds in all; returns what is still owed (0: go)."""
    deadline = time.monotonic() + max_wait
    while True:
        wait = acquire(provider, n, quota_per_s)
        if wait <= 0:
            return 0.0
        if time.monotonic() + wait > deadline:
            return wait
        time.sleep(wait)


def cut(provider: str, quota_per_s: float) -> float:
    """The provider said 429: halve the shared rate. Returns the new rate."""
    if quota_per_s <= 0:
        return 0.0
    try:
        rate = float(_cut(keys=[_bucket(provider)], args=[quota_per_s, time.time(), RECOVERY_SECONDS, FLOOR_SHARE],
                          client=client()))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        note_outage(exc)
        return quota_per_s
    log.info("provider %s answered 429: send rate cut to %.0f/s", provider, rate)
    return rate


_READ_RATE = _CURRENT_RATE + """
return tostring(current_rate(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])))
"""
_read_rate = script(_READ_RATE)


def current_rate(provider: str, quota_per_s: float) -> float:
    return float(_read_rate(keys=[_bucket(provider)], args=[quota_per_s, time.time(), RECOVERY_SECONDS],
                            client=client()))
