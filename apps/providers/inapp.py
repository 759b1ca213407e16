"""In-app: the message is stored in the user's inbox (apps.inbox) and announced to live streams."""

from __future__ import annotations

from django.db import DatabaseError

from apps.inbox.store import deliver

from .base import Content, Outcome, Result, Target, Transport, TransportError, grouped_by_content


class InAppTransport(Transport):
    name = "in_app"

    def send_batch(self, content: Content, targets: list[Target]) -> list[Result]:
        results: list[Result] = [None] * len(targets)  # type: ignore[list-item]
        for group_content, indexes in grouped_by_content(content, targets).items():
            try:
                ids = deliver([targets[i].recipient_id for i in indexes], group_content.title, group_content.body,
                              group_content.data)
            except DatabaseError as exc:
                raise TransportError(f"inbox write failed: {type(exc).__name__}") from None
            for index, message_id in zip(indexes, ids, strict=True):
                results[index] = Result(Outcome.SENT, provider_id=str(message_id))
        return results
