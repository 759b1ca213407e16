"""Batch and recipient claims, the sent journal and lease holders, on the real Redis."""

import socket
import subprocess
import uuid

import pytest

from apps.core.redis_client import client, key
from apps.delivery import claims, epoch, holders


def notification_id() -> int:
    return uuid.uuid4().int % 1_000_000_000


@pytest.fixture(autouse=True)
def same_epoch(monkeypatch):
    """Claims of notifications dispatched under the current epoch, as the dispatcher stamps them (no
    database here, so a new epoch re-dispatches nothing)."""
    monkeypatch.setattr(epoch, "_redispatch_open_notifications", lambda new: None)
    current = epoch.current()
    monkeypatch.setattr(claims, "claim", lambda *a, **k: _claim(*a, **{"dispatch_epoch": current, **k}))


_claim = claims.claim


def test_a_recipient_belongs_to_the_batch_that_claimed_it_first():
    n = notification_id()
    first = claims.claim(n, "push", "push:1:0.0", [1, 2, 3, 9000, 70_000])
    second = claims.claim(n, "push", "push:2:0.0", [3, 4, 9000, 70_001])  # a re-dispatch overlapping it
    assert (first.state, first.foreign) == ("fresh", frozenset())
    assert (second.state, second.foreign) == ("fresh", {3, 9000})
    assert claims.claim(n, "email", "email:1:0.0", [3]).foreign == frozenset()  # channels are separate
    claims.release(second)
    again = claims.claim(n, "push", "push:2:0.0", [3, 4, 9000, 70_001])
    assert (again.state, again.foreign) == ("resume", {3, 9000})  # the resumed run keeps the same split


def test_a_later_pass_inherits_its_recipients():
    n = notification_id()
    claims.finish(claims.claim(n, "push", "push:1:0.0", [5, 6]))
    retry = claims.claim(n, "push", "push:1:0.0/r1", None)
    assert (retry.state, retry.foreign) == ("fresh", frozenset())
    assert claims.claim(n, "push", "push:1:0.0", [5, 6]).state == "done"


def test_the_sent_journal_reaches_the_next_run_and_goes_with_the_batch():
    n = notification_id()
    first = claims.claim(n, "push", "push:1:0.0", [1, 2])
    claims.write_journal(first, {1: "b1-0"})
    holders.drop(first.holder)  # the worker died here, before recording
    resumed = claims.claim(n, "push", "push:1:0.0", [1, 2])
    assert (resumed.state, resumed.journal) == ("resume", {1: "b1-0"})
    claims.finish(resumed)
    assert not client().exists(key(f"batch-sent:{n}:push:1:0.0"))


def test_a_holder_that_died_on_this_host_is_taken_over_at_once():
    n = notification_id()
    dead = subprocess.Popen(["true"])  # noqa: S607
    dead.wait()
    client().set(key(f"batch:{n}:push:1:0.0"), f"{socket.gethostname()}|{dead.pid}|0|abc", ex=120)
    assert claims.claim(n, "push", "push:1:0.0", [1]).state == "fresh"

    alive = subprocess.Popen(["sleep", "30"])  # noqa: S607
    try:
        start = holders._start_time(alive.pid)
        client().set(key(f"batch:{n}:push:2:0.0"), f"{socket.gethostname()}|{alive.pid}|{start}|abc", ex=120)
        assert claims.claim(n, "push", "push:2:0.0", [2]).state == "busy"
        client().set(key(f"batch:{n}:push:3:0.0"), f"other-host|{alive.pid}|{start}|abc", ex=120)
        assert claims.claim(n, "push", "push:3:0.0", [3]).state == "busy"  # another host: wait for the lease
    finally:
        alive.kill()
        alive.wait()


def test_a_lease_this_process_gave_up_is_taken_back():
    lease = key(f"dispatching:{notification_id()}")
    holder = holders.acquire(lease, 60)
    assert holder and holders.acquire(lease, 60) is None  # held, and this process still works on it
    holders.drop(holder)  # the task gave up (an outage) without deleting the lease
    assert holders.acquire(lease, 60)


def test_a_large_batch_claims_every_recipient_in_one_call():
    n = notification_id()
    ids = list(range(1, 12_001))  # two shards, over unpack()'s limit in one BITFIELD
    first = claims.claim(n, "push", "push:1:0", ids)
    assert first.state == "fresh" and first.foreign == frozenset()
    second = claims.claim(n, "push", "push:2:0", [*range(11_990, 12_011)])
    assert second.foreign == frozenset(range(11_990, 12_001))


def test_a_claim_under_another_epoch_is_never_fresh():
    """Redis lost its data since the dispatch: what the claim says proves nothing, PostgreSQL decides."""
    n = notification_id()
    stale = _claim(n, "push", "push:1:0", [1, 2], dispatch_epoch="notify:gone")
    assert stale.state == "resume" and not stale.same_epoch
    client().delete(epoch.epoch_key())  # Redis loses everything, the epoch with it
    before = epoch.current()
    client().delete(epoch.epoch_key())
    lost = _claim(n, "push", "push:1:1", [3], dispatch_epoch=before)
    assert lost.state == "resume" and epoch.current() != before  # a new epoch was written
