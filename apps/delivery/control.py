"""Pause, resume and cancel a notification while it is being sent.

A flag per notification in Redis, read by the sender once per batch. A batch that finds its
notification paused is parked (its task's arguments kept in a Redis list) instead of sent; resume
clears the flag and hands every parked batch back, atomically with respect to parking, so no batch
is stranded. A cancelled notification's remaining recipients are recorded skipped ("cancelled").
In-flight batches finish, so sending stops within a batch's time.
"""

from __future__ import annotations

from apps.core.redis_client import client, key, script

from .batch_message import BatchMessage

PAUSED, CANCELLED = "paused", "cancelled"


def _keys(notification_id: int) -> tuple[str, str]:
    return key(f"control:{notification_id}"), key(f"parked:{notification_id}")


def state(notification_id: int) -> str:
    value = client().get(_keys(notification_id)[0])
    return value.decode() if value else ""


def pause(notification_id: int) -> None:
    flag, _ = _keys(notification_id)
    client().set(flag, PAUSED, ex=30 * 86400)


# Park only while still paused; otherwise tell the sender to go on.
_PARK = """
if redis.call('GET', KEYS[1]) ~= 'paused' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], 2592000)
return 1
"""
_park = script(_PARK)

# Clear the flag (or set a new one) and take every parked batch, in one step.
_RELEASE = """
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1], 'EX', 2592000) end
local parked = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return parked
"""
_release = script(_RELEASE)


def park(notification_id: int, batch: BatchMessage) -> bool:
    """Keep a batch while its notification is paused; False if it is not paused (any more)."""
    return bool(_park(keys=_keys(notification_id), args=[batch.encode()], client=client()))


def release(notification_id: int, new_state: str = "") -> list[BatchMessage]:
    """Set the state ("" to run again, or CANCELLED) and return the batches parked meanwhile."""
    return [BatchMessage.decode(raw) for raw in _release(keys=_keys(notification_id), args=[new_state],
                                                          client=client())]
