"""The one hook into the pipeline: a completed notification enqueues one task, and nothing more is done on
the finalizer's time (which endpoints, what to send and the sending itself all happen in that task)."""

from __future__ import annotations

from apps.core import queues


def on_notification_completed(sender: object, notification_id: int, **kwargs: object) -> None:
    from .tasks import report_completion

    report_completion.apply_async(args=[notification_id], queue=queues.CALLBACKS)
