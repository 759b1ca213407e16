"""Receipts in Prometheus (written into PROMETHEUS_MULTIPROC_DIR like apps/core/metrics.py's)."""

from __future__ import annotations

from prometheus_client import Counter

RECEIPTS = Counter("notify_receipts_total", "Provider receipts recorded (first of each state per delivery), by"
                   " channel, provider and state (delivered, bounced, soft_bounced, complained, opened, clicked,"
                   " undelivered, failed).", ["channel", "provider", "state"])
UNKNOWN = Counter("notify_receipts_unknown_total", "Receipts naming a message id no delivery has (ignored).",
                  ["channel", "provider"])
REFUSED = Counter("notify_receipts_refused_total", "Receipt webhooks refused: bad signature or malformed body.",
                  ["provider", "why"])
SUPPRESSIONS = Counter("notify_suppressions_total", "Addresses added to the suppression list, by channel and reason.",
                       ["channel", "reason"])
