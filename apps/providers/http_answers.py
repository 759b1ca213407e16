"""How an HTTP status maps onto a per-recipient result, shared by the HTTP adapters.

Errors are written "HTTP <status>: <provider's words>", so the sender can recognise a 429 (it cuts
the shared send rate) whichever provider said it.
"""

from __future__ import annotations

import logging

from .base import Result, permanent, retry_after_seconds, transient

log = logging.getLogger(__name__)


def failure(status: int, words: str, retry_after: str | None = None, invalid_address: bool = False) -> Result:
    """A non-success answer: 408, 429 and 5xx are worth retrying, any other 4xx is not."""
    error = f"HTTP {status}: {words}"[:300]
    if status in (408, 429) or status >= 500:
        return transient(error, retry_after_seconds(retry_after))
    return permanent(error, invalid_address=invalid_address)


UNEXPECTED = "unexpected answer body"


def unexpected_body(status: int) -> Result:
    """An answer that is not what the protocol says: transient (log_unexpected reports it once)."""
    return transient(f"{UNEXPECTED} (HTTP {status})")


def log_unexpected(provider: str, results: list[Result]) -> list[Result]:
    """One log line per batch for unexpected answers, with the status and never the body."""
    odd = [r.error for r in results if r.error.startswith(UNEXPECTED)]
    if odd:
        log.warning("%s: %d answer(s) with an %s, e.g. %s", provider, len(odd), UNEXPECTED, odd[0])
    return results


def unreachable(provider: str, exc: BaseException) -> Result:
    name = type(exc).__name__
    return transient("timeout" if "Timeout" in name else f"{provider} unreachable: {name}")
