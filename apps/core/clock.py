"""The pipeline's notion of now, for deferrals (frequency caps, quiet hours, expiry).

In production it is the system clock. With NOTIFY_CONTROLLABLE_CLOCK (tests), every process adds an
offset kept in Redis, so a test moves time forward for workers and bridges at once instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.conf import settings

from .redis_client import client, key


def _offset() -> float:
    # Read on every call, never cached: a cached offset let one process act in the previous test's
    # day for a moment after the clock moved (a cap counted in the wrong window). Tests only.
    if not settings.CONTROLLABLE_CLOCK:
        return 0.0
    return float(client().get(key("clock:offset")) or 0.0)


def now() -> float:
    """Seconds since the epoch."""
    return time.time() + _offset()


def now_datetime() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


def advance(seconds: float) -> None:
    """Move every process's clock forward (tests only)."""
    if not settings.CONTROLLABLE_CLOCK:
        raise RuntimeError("the clock is the system's: set NOTIFY_CONTROLLABLE_CLOCK to move it")
    client().incrbyfloat(key("clock:offset"), seconds)


def reset() -> None:
    client().delete(key("clock:offset"))
