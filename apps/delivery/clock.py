"""The pipeline's notion of now, for deferrals (frequency caps, quiet hours, expiry).

In production it is the system clock. With NOTIFY_CONTROLLABLE_CLOCK (tests), every process adds an
offset kept in Redis, so a test moves time forward for workers and bridges at once instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.conf import settings

from .progress import client, key

_CACHE_SECONDS = 0.2
_cached = (0.0, 0.0)  # (read at, offset)


def _offset() -> float:
    global _cached
    if not settings.CONTROLLABLE_CLOCK:
        return 0.0
    read_at, offset = _cached
    if time.monotonic() - read_at > _CACHE_SECONDS:
        offset = float(client().get(key("clock:offset")) or 0.0)
        _cached = (time.monotonic(), offset)
    return offset


def now() -> float:
    """Seconds since the epoch."""
    return time.time() + _offset()


def now_datetime() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


def advance(seconds: float) -> None:
    """Move every process's clock forward (tests only)."""
    global _cached
    if not settings.CONTROLLABLE_CLOCK:
        raise RuntimeError("the clock is the system's: set NOTIFY_CONTROLLABLE_CLOCK to move it")
    client().incrbyfloat(key("clock:offset"), seconds)
    _cached = (0.0, 0.0)


def reset() -> None:
    global _cached
    client().delete(key("clock:offset"))
    _cached = (0.0, 0.0)
