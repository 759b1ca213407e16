"""Who holds a lease in Redis (a batch claim, a notification's dispatch): host, process and claim.

A lease names its holder so that a holder that died is noticed at once when it ran on this host:
its process is gone (kill -9, the OOM killer), or it is this very process and it gave the work up
(a dependency outage made the task requeue itself). A holder on another host is waited out by the
lease's expiry. Hosts are told apart by hostname, so give each worker container its own (Docker's
default).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import redis

from apps.core.redis_client import client, script

_HOST = socket.gethostname()
_active: set[str] = set()
_lock = threading.Lock()
_orphans: list[tuple[str, str]] = []
_this: tuple[int, str] = (0, "")

_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_take_over = script(_TAKE_OVER)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' if there is no such process): pids are reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _this_process() -> str:
    """host|pid|start time of this process, read from /proc once per process (a forked child has its own)."""
    global _this
    pid = os.getpid()
    if _this[0] != pid:
        _this = (pid, f"{_HOST}|{pid}|{_start_time(pid)}")
    return _this[1]


def new_holder() -> str:
    """A name for one claim by this process; drop() it when the claim is finished or given back."""
    holder = f"{_this_process()}|{uuid.uuid4().hex[:12]}"
    with _lock:
        _active.add(holder)
    return holder


def drop(holder: str) -> None:
    with _lock:
        _active.discard(holder)


def is_gone(holder: str) -> bool:
    """True if `holder` ran on this host and its process died or no longer works on the claim."""
    parts = holder.split("|")
    if len(parts) != 4 or parts[0] != _HOST or not parts[1].isdigit():
        return False
    pid, started = int(parts[1]), parts[2]
    if _start_time(pid) != started:
        return True
    if pid == os.getpid():
        with _lock:
            return holder not in _active
    return False


def take_over(key: str, holder: str) -> bool:
    """Delete a gone holder's lease, unless someone else took it meanwhile."""
    return bool(_take_over(keys=[key], args=[holder], client=client()))


def acquire(key: str, seconds: int) -> str | None:
    """Take the lease `key` for `seconds`; None if a live holder has it. Returns our holder name."""
    release_orphans()
    holder = new_holder()
    for _ in range(2):
        if client().set(key, holder, nx=True, ex=seconds):
            return holder
        other = client().get(key)
        other = other.decode() if isinstance(other, bytes) else other
        if not (other and is_gone(other) and take_over(key, other)):
            break
    drop(holder)
    return None


def release(key: str, holder: str) -> None:
    """Give the lease back if we still hold it; if Redis is away, as soon as it is back."""
    drop(holder)
    _give_back(key, holder)


def _give_back(key: str, holder: str) -> None:
    try:
        take_over(key, holder)
    except redis.RedisError:
        with _lock:
            _orphans.append((key, holder))
        raise


def release_orphans() -> None:
    """Leases this process could not give back during an outage, given back now (called per claim)."""
    while _orphans:
        with _lock:
            if not _orphans:
                return
            key, holder = _orphans.pop()
        _give_back(key, holder)
