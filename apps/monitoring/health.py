"""Dependency checks with short timeouts, for /readyz, /metrics and the long-running commands."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connections

from apps.core.outages import BrokerUnavailable
from apps.streaming.client import check_broker
from apps.streaming.local_broker import BrokerNotConfigured


def check_postgres() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database error means not ready
        connections["default"].close_if_unusable_or_obsolete()
        return f"{type(exc).__name__}"
    return None


def check_redis() -> str | None:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}"
    finally:
        client.close()
    return None


def check_kafka() -> str | None:
    try:
        check_broker(timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    except BrokerUnavailable:
        return "unreachable"
    except BrokerNotConfigured:
        return "not configured"
    return None


CHECKS = {"postgres": check_postgres, "redis": check_redis, "kafka": check_kafka}


def run_checks() -> dict[str, str | None]:
    """name -> None if up, else a short reason (never a URL with credentials)."""
    return {name: check() for name, check in CHECKS.items()}
