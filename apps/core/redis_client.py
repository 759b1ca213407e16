"""The Redis client of this process, the key scheme (every key under REDIS_KEY_PREFIX) and Lua scripts.

Redis is a cache here: what it holds makes the common case fast; PostgreSQL is the record.
"""

from __future__ import annotations

import redis
from django.conf import settings
from redis.commands.core import Script

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
    return _client


def forget_client() -> None:
    """Drop the cached client, for a caller that has just pointed settings.REDIS_URL elsewhere."""
    global _client
    _client = None


def script(text: str) -> Script:
    """A Lua script run by its SHA (EVALSHA), loaded again by redis-py if Redis lost it; call it with
    client=client(), which may change."""
    return Script(None, text.encode())


def key(suffix: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{suffix}"
