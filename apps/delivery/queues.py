"""Celery queues, one per purpose (as GOV.UK Notify does): priorities never share a queue."""

DISPATCH = "dispatch"
RETRY = "send.retry"


def send_queue(priority: str) -> str:
    return f"send.{priority}"


def all_queues() -> list[str]:
    return [DISPATCH, RETRY, send_queue("high"), send_queue("normal"), send_queue("low")]
