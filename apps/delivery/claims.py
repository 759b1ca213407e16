"""Batch and recipient claims in Redis: at most one worker sends a batch at a time, and each recipient
of a notification's channel belongs to exactly one batch.

A batch id is deterministic (notification, channel, dispatch generation and sequence), so a
redelivered Kafka message or a retried task names the same batch. The first claim of a batch is
"fresh": nothing of it can have been sent, so no lookup is needed. A later claim after an unfinished
one is "resume": the sender first drops the recipients already recorded in PostgreSQL. A claim held
by a live worker is "busy" (try later; the lease expires if that worker died, and on the same host a
dead holder is noticed at once, see holders.py), and a finished one is "done".

Recipient claims: a batch's first claim also sets one bit per recipient in a per-notification bitmap
(sharded, 1 KB per 8,192 ids, so a one-recipient OTP costs 1 KB). A recipient whose bit another batch
set first is "foreign" and is not this batch's to send. This is what keeps two dispatch generations
(a dispatcher killed and re-run while its first batches are still queued) from sending to the same
person. Retries, deferrals and replays inherit their recipients from the batch that claimed them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import groupby

import redis
from django.conf import settings

from apps.core.redis_client import client, key, script

from . import epoch, holders, progress

LEASE_SECONDS = 120
DONE_TTL_SECONDS = 7 * 86400
RECIPIENT_TTL_SECONDS = 2 * 86400
SHARD_BITS = 13

# KEYS: batch state, claim count, foreign list, sent journal, epoch, hand-on plan, recipient bitmap shards...
# ARGV: holder, lease, done ttl, recipient ttl, the notification's dispatch epoch token, then per shard:
# its first id and its recipients' bit offsets, comma-separated. One BITFIELD per shard sets the bits
# and answers which were set before. The last value returned says whether the epoch matched: if not,
# Redis lost its data since the dispatch, and a "fresh" claim proves nothing (it comes back "resume").
_CLAIM = """
local same_epoch = redis.call('GET', KEYS[5]) == ARGV[5] and 1 or 0
local state = redis.call('GET', KEYS[1])
if state == 'done' then return {'done', '', '', same_epoch, ''} end
if state then return {'busy', state, '', same_epoch, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local claims = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if claims > 1 then
  return {'resume', redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[4]) or '', same_epoch,
          redis.call('GET', KEYS[6]) or ''}
end
local foreign = {}
local function set_bits(shard_key, first_id, ops, offsets)
  local before = redis.call('BITFIELD', shard_key, unpack(ops))
  for i = 1, #before do
    if before[i] == 1 then foreign[#foreign + 1] = first_id + tonumber(offsets[i]) end
  end
end
for shard = 7, #KEYS do
  local first_id = tonumber(ARGV[2 * shard - 8])
  local ops, offsets = {}, {}
  for offset in string.gmatch(ARGV[2 * shard - 7], '%d+') do
    local n = #ops
    ops[n + 1] = 'SET'; ops[n + 2] = 'u1'; ops[n + 3] = offset; ops[n + 4] = 1
    offsets[#offsets + 1] = offset
    if #offsets == 1000 then  -- unpack() takes at most about 8,000 values
      set_bits(KEYS[shard], first_id, ops, offsets)
      ops, offsets = {}, {}
    end
  end
  if #offsets > 0 then set_bits(KEYS[shard], first_id, ops, offsets) end
  redis.call('EXPIRE', KEYS[shard], ARGV[4])
end
local listed = table.concat(foreign, ',')
if #foreign > 0 then redis.call('SET', KEYS[3], listed, 'EX', ARGV[3]) end
return {same_epoch == 1 and 'fresh' or 'resume', listed, '', same_epoch, ''}
"""
_claim = script(_CLAIM)


@dataclass(frozen=True)
class Claim:
    batch_key: str
    state: str  # fresh | resume | busy | done
    holder: str = ""  # ours when fresh or resume, the other worker's when busy
    foreign: frozenset[int] = frozenset()  # recipients another batch claimed first: not ours to send
    journal: dict[int, str] = field(default_factory=dict)  # resume: sent by the earlier run, maybe not recorded
    same_epoch: bool = True  # False: Redis lost its data since the notification was dispatched
    handed_on: HandOn | None = None  # resume: what the earlier run handed to retries before it stopped


@dataclass(frozen=True)
class HandOn:
    """The retries and dead letters a batch hands on once all its provider calls have answered, noted
    before they are handed on: a run resuming the batch hands the same on again (the retry batches'
    ids are deterministic, so a second copy finds its claim done) and sends none of them itself."""

    retry_ids: list[int]
    retry_devices: dict[int, list[int]]
    retry_delay: float
    dead_ids: list[int]
    dead_reason: str
    dead_reason_kind: str


def _text(value: bytes | str | int | None) -> str:
    return value.decode() if isinstance(value, bytes) else "" if value is None else str(value)


def _batch_keys(batch_key: str) -> list[str]:
    return [key(f"batch:{batch_key}"), key(f"batch-claims:{batch_key}"), key(f"batch-foreign:{batch_key}"),
            key(f"batch-sent:{batch_key}")]


def _plan_key(batch_key: str) -> str:
    return key(f"batch-hand-on:{batch_key}")


def claim(notification_id: int, channel: str, batch_id: str, recipient_ids: list[int] | None = None,
          dispatch_epoch: str = "") -> Claim:
    """Claim a batch; with `recipient_ids` (a first pass), also claim its recipients. `dispatch_epoch`:
    the Redis epoch the notification was dispatched under (epoch.py); under another, never "fresh"."""
    holders.release_orphans()
    batch_key = f"{notification_id}:{batch_id}"
    keys = [*_batch_keys(batch_key), epoch.epoch_key(), _plan_key(batch_key)]
    holder = holders.new_holder()
    token = dispatch_epoch.removeprefix(settings.REDIS_KEY_PREFIX)
    args: list = [holder, LEASE_SECONDS, DONE_TTL_SECONDS, RECIPIENT_TTL_SECONDS, token]
    # A batch's ids come sorted from the audience stream, so this is one group, rarely two; a group
    # per run of one shard stays correct for unsorted ids too.
    for shard, members in _by_shard(recipient_ids or []):
        first_id = shard << SHARD_BITS
        keys.append(key(f"recipients:{notification_id}:{channel}:{shard}"))
        args += (first_id, ",".join(map(str, map(first_id.__rsub__, members))))
    for _ in range(2):
        state, detail, journal, same_epoch, plan = (_text(v) for v in _claim(keys=keys, args=args, client=client()))
        if state != "busy" or not (holders.is_gone(detail) and holders.take_over(keys[0], detail)):
            break
    if same_epoch != "1":
        epoch.current()  # writes a new epoch if Redis lost it, and has open notifications dispatched again
    if state in ("busy", "done"):
        holders.drop(holder)
        return Claim(batch_key, state, detail)
    sent = _read_journal(journal) if journal else {}
    return Claim(batch_key, state, holder, frozenset(int(i) for i in detail.split(",") if i), sent,
                 same_epoch=same_epoch == "1", handed_on=_read_plan(plan) if plan else None)


def _by_shard(recipient_ids: list[int]) -> Iterator[tuple[int, Iterable[int]]]:
    """Runs of ids in one bitmap shard; a batch's ids usually all fall in one, found without a step per id."""
    if recipient_ids and min(recipient_ids) >> SHARD_BITS == max(recipient_ids) >> SHARD_BITS:
        yield recipient_ids[0] >> SHARD_BITS, recipient_ids
        return
    yield from groupby(recipient_ids, key=lambda recipient_id: recipient_id >> SHARD_BITS)


_FIELD, _RECORD = "\x1f", "\x1e"  # separators no provider message id contains


def write_journal(batch: Claim, sent: dict[int, str]) -> None:
    """Note what the provider accepted before it is recorded in PostgreSQL: if this worker dies in
    between, the batch's next run records these as sent instead of sending them again. Called as each
    provider call of the batch answers, so a kill resends at most the calls in flight (APPEND: one
    round trip per call, whatever the journal's size)."""
    if not sent:
        return
    entries = _RECORD.join([f"{recipient_id}{_FIELD}{provider_id}" for recipient_id, provider_id in sent.items()])
    try:
        journal = _batch_keys(batch.batch_key)[3]
        client().pipeline(transaction=False).append(journal, entries + _RECORD).expire(journal, DONE_TTL_SECONDS) \
            .execute()
    except redis.RedisError:
        pass  # Redis is away: go on to record the sends in PostgreSQL, which a resumed run reads too


def _read_journal(text: str) -> dict[int, str]:
    sent = {}
    for entry in text.split(_RECORD):
        recipient_id, _, provider_id = entry.partition(_FIELD)
        if recipient_id.isdigit():
            sent[int(recipient_id)] = provider_id
    return sent


def note_hand_on(batch: Claim, plan: HandOn) -> None:
    """Note the batch's retries and dead letters before they are handed on (see HandOn)."""
    client().set(_plan_key(batch.batch_key), json.dumps(asdict(plan)), ex=DONE_TTL_SECONDS)


def _read_plan(text: str) -> HandOn:
    plan = json.loads(text)
    plan["retry_devices"] = {int(recipient_id): devices for recipient_id, devices in plan["retry_devices"].items()}
    return HandOn(**plan)


def _spent_keys(batch: Claim) -> list[str]:
    """What a finished batch no longer needs: its sent journal and its hand-on plan."""
    return [_batch_keys(batch.batch_key)[3], _plan_key(batch.batch_key)]


def finish(batch: Claim) -> None:
    state = _batch_keys(batch.batch_key)[0]
    client().pipeline(transaction=False).set(state, "done", ex=DONE_TTL_SECONDS).delete(*_spent_keys(batch)) \
        .execute()
    holders.drop(batch.holder)


def finish_counted(batch: Claim, notification_id: int, **counts: int) -> bool:
    """Add the batch's outcomes to the notification's counters and mark the batch done, in one step: a
    batch is counted and done, or neither. So a run that resumes an unfinished batch knows that what an
    earlier run recorded in PostgreSQL was never counted. True when this completed the notification."""
    state = _batch_keys(batch.batch_key)[0]
    completed = progress.add(notification_id, finished_batch=(state, _spent_keys(batch), DONE_TTL_SECONDS),
                             **counts)
    holders.drop(batch.holder)
    return completed


def release(batch: Claim) -> None:
    """Give the claim back after a failure, so a retry resumes at once instead of waiting for the lease."""
    holders.release(_batch_keys(batch.batch_key)[0], batch.holder)


# KEYS: journals. ARGV: a recipient id, the record and field separators. Each entry of that recipient keeps
# its id (so a resumed batch still records it sent, never sends again) and loses its provider message id.
_FORGET = """
local forgotten = 0
for i = 1, #KEYS do
  local text = redis.call('GET', KEYS[i])
  if text then
    local entries, changed, start = {}, 0, 1
    while true do
      local stop = string.find(text, ARGV[2], start, true)
      if not stop then break end
      local entry = string.sub(text, start, stop - 1)
      local head = ARGV[1] .. ARGV[3]
      if string.sub(entry, 1, #head) == head and #entry > #head then
        entry = head
        changed = changed + 1
      end
      entries[#entries + 1] = entry
      start = stop + 1
    end
    if changed > 0 then
      redis.call('SET', KEYS[i], table.concat(entries, ARGV[2]) .. ARGV[2] .. string.sub(text, start), 'KEEPTTL')
      forgotten = forgotten + changed
    end
  end
end
return forgotten
"""
_forget = script(_FORGET)


def forget_provider_ids(recipient_id: int) -> int:
    """Erasure: drop the provider message ids that unfinished batches' journals hold for a recipient (an id
    at a provider can lead back to an address); returns how many entries lost theirs."""
    pattern = _glob_escape(key("batch-sent:")) + "*"
    forgotten = 0
    page: list[bytes] = []
    for journal in client().scan_iter(match=pattern, count=1000):
        page.append(journal)
        if len(page) == 500:
            forgotten += _forget(keys=page, args=[recipient_id, _RECORD, _FIELD], client=client())
            page = []
    if page:
        forgotten += _forget(keys=page, args=[recipient_id, _RECORD, _FIELD], client=client())
    return int(forgotten)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
