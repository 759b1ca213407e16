"""Live per-notification counters in Redis, kept by the pipeline (never COUNT(*) over millions).

They are incremented only by rows a batch newly inserted, so redeliveries do not inflate them; the
finalizer still recounts from PostgreSQL, which is the record.
"""

from __future__ import annotations

import time

from apps.core.redis_client import client, key, script

TERMINAL = ("sent", "failed", "skipped", "dead_lettered")

def progress_key(notification_id: int) -> str:
    return key(f"progress:{notification_id}")


# Add counts (ARGV: the time, a done TTL, then name/value pairs); if the audience size is known, every
# recipient is terminal and no device retry is pending (a user recorded sent whose other device failed for
# now), record when, and claim the right to finalize (exactly one caller gets 1). With KEYS[2] (a batch's
# state, claims.py), the batch is marked done in the same step, and KEYS[3...] (what it no longer needs) go.
_ADD_AND_CHECK = """
for i = 3, #ARGV - 1, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
if KEYS[2] then
  redis.call('SET', KEYS[2], 'done', 'EX', ARGV[2])
  for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
end
redis.call('HSET', KEYS[1], 't_last_recorded', ARGV[1])
redis.call('EXPIRE', KEYS[1], 604800)
local v = redis.call('HMGET', KEYS[1], 'targeted', 'sent', 'failed', 'skipped', 'dead_lettered', 'finalizing',
                     'devices_pending')
if not v[1] or v[6] then return 0 end
local done = 0
for i = 2, 5 do done = done + tonumber(v[i] or 0) end
if done >= tonumber(v[1]) and tonumber(v[7] or 0) <= 0 then
    redis.call('HSET', KEYS[1], 'finalizing', 1, 't_all_recorded', ARGV[1])
    return 1
end
return 0
"""
_add_and_check = script(_ADD_AND_CHECK)


def add(notification_id: int, finished_batch: tuple[str, list[str], int] | None = None, **counts: int) -> bool:
    """Add counts; True when this call completed the notification (and must finalize it).
    `finished_batch`: (state key, keys to delete, done TTL) of a batch to mark done with the same step."""
    keys = [progress_key(notification_id)]
    args: list = [time.time(), 0]
    if finished_batch:
        state_key, spent_keys, done_ttl = finished_batch
        keys += [state_key, *spent_keys]
        args[1] = done_ttl
    for name, value in counts.items():
        if value:
            args += [name, value]
    return bool(_add_and_check(keys=keys, args=args, client=client()))


def repair(notification_id: int, counts: dict[str, int]) -> None:
    """Set the counters to what PostgreSQL records (an outage can lose an increment, never a row)."""
    client().hset(progress_key(notification_id), mapping={name: counts.get(name, 0) for name in TERMINAL})


def mark(notification_id: int, stage: str) -> None:
    """Record when a stage first happened (seconds since the epoch)."""
    client().hsetnx(progress_key(notification_id), f"t_{stage}", time.time())


def read(notification_id: int) -> dict[str, float]:
    raw = client().hgetall(progress_key(notification_id))
    return {k.decode(): float(v) for k, v in raw.items()}
