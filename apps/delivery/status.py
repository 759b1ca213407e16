"""A notification's status as the API shows it: the live counters while it runs, PostgreSQL's once done."""

from __future__ import annotations

from datetime import UTC, datetime

from . import progress
from .models import Notification


def status_of(notification: Notification) -> dict:
    marks = progress.read(notification.pk)
    live = marks if notification.status != "completed" else {}
    counts = {name: int(live.get(name, getattr(notification, name, 0) or 0)) for name in ("sent", "failed", "skipped")}
    if live:
        counts["failed"] += int(live.get("dead_lettered", 0))
    targeted = notification.targeted if notification.targeted is not None else live.get("targeted")
    done = sum(counts.values())
    return {
        "id": notification.pk, "status": notification.status, "category": notification.category.slug,
        "channels": notification.channels, "idempotency_key": notification.idempotency_key,
        "targeted": int(targeted) if targeted is not None else None, **counts,
        "pending": max(int(targeted) - done, 0) if targeted is not None else None,
        "throttled": int(marks.get("throttled", 0)),
        "first_send_at": _iso(marks.get("t_first_send")), "last_send_at": _iso(marks.get("t_last_recorded")),
        "recipients_per_s": _rate(counts["sent"], marks.get("t_first_send"), marks.get("t_last_recorded")),
        "created_at": notification.created_at.isoformat(),
        "completed_at": notification.completed_at.isoformat() if notification.completed_at else None,
    }


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _rate(sent: int, first: float | None, last: float | None) -> float | None:
    return round(sent / (last - first), 1) if first and last and last > first else None
