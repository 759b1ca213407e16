"""Structured logs: every line carries the notification and batch being worked on (contextvars set by
the tasks), as JSON in production (LOG_FORMAT=json) or as a short prefix in development.

Messages must never contain bodies, tokens, email addresses or phone numbers; the code logs ids and
counts only, and scrub() masks anything that looks like a contact point as a last line of defence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from contextlib import contextmanager
from datetime import UTC, datetime

notification_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("notification_id", default=None)
batch_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("batch_id", default=None)

_CONTACT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\+\d{7,15}|fake:\d+:[0-9a-f]+")


def scrub(text: str) -> str:
    return _CONTACT.sub("[redacted]", text)


@contextmanager
def log_context(notification: int | None, batch: str | None = None):  # noqa: ANN201
    tokens = notification_id.set(notification), batch_id.set(batch)
    try:
        yield
    finally:
        notification_id.reset(tokens[0])
        batch_id.reset(tokens[1])


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        record.notification_id = notification_id.get()
        record.batch_id = batch_id.get()
        parts = [f"n={record.notification_id}"] if record.notification_id else []
        if record.batch_id:
            parts.append(f"b={record.batch_id}")
        record.context = f"[{' '.join(parts)}] " if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": scrub(record.getMessage()),
        }
        if getattr(record, "notification_id", None):
            line["notification_id"] = record.notification_id
        if getattr(record, "batch_id", None):
            line["batch_id"] = record.batch_id
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line)
