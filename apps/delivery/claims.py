"""Batch claims in Redis: at most one worker sends a given batch at a time.

A batch id is deterministic (notification, channel, dispatch sequence), so a redelivered Kafka
message or a retried task names the same batch. The first claim of a batch is "fresh": nothing of it
can have been sent, so no lookup is needed. A later claim after an unfinished one is "resume": the
sender first drops the recipients already recorded in PostgreSQL. A claim held by a live worker is
"busy" (try later; the lease expires if that worker died), and a finished one is "done".
"""

from __future__ import annotations

from .progress import client, key

LEASE_SECONDS = 120
DONE_TTL_SECONDS = 7 * 86400

_CLAIM = """
local state = redis.call('GET', KEYS[1])
if state == 'done' then return 'done' end
if state then return 'busy' end
redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1])
local claims = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if claims == 1 then return 'fresh' end
return 'resume'
"""


def _keys(batch_key: str) -> tuple[str, str]:
    return key(f"batch:{batch_key}"), key(f"batch-claims:{batch_key}")


def claim(batch_key: str) -> str:
    state = client().eval(_CLAIM, 2, *_keys(batch_key), LEASE_SECONDS, DONE_TTL_SECONDS)
    return state.decode() if isinstance(state, bytes) else state


def finish(batch_key: str) -> None:
    client().set(_keys(batch_key)[0], "done", ex=DONE_TTL_SECONDS)


def release(batch_key: str) -> None:
    """Give the claim back after a failure, so a retry resumes at once instead of waiting for the lease."""
    client().delete(_keys(batch_key)[0])
