"""Celery queues, one per purpose (as GOV.UK Notify does): priorities never share a queue.

High priority (OTP, security) has its own dispatch and send queues, served by its own worker, so a
marketing blast's dispatch and its thousands of send batches never stand in front of an OTP code.
"""

DISPATCH = "dispatch"
RETRY = "send.retry"
# Status callbacks to the calling services (apps/callbacks): their own worker, so a slow receiver holds nothing else.
CALLBACKS = "callbacks"


def dispatch_queue(priority: str) -> str:
    return f"{DISPATCH}.high" if priority == "high" else DISPATCH


def send_queue(priority: str) -> str:
    return f"send.{priority}"


def retry_queue(priority: str) -> str:
    """High-priority retries stay on the high queue; the rest share the retry queue."""
    return send_queue("high") if priority == "high" else RETRY


def all_queues() -> list[str]:
    return [DISPATCH, dispatch_queue("high"), RETRY, send_queue("high"), send_queue("normal"), send_queue("low"),
            CALLBACKS]
