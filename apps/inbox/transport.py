"""The in-app channel's transport: the message is stored in the user's inbox and announced to live streams.
The inbox registers it with the provider registry when the app is ready."""

from __future__ import annotations

from django.db import DatabaseError

from apps.providers.base import Content, Result, Target, Transport, TransportError, send_per_content, sent_results

from .store import deliver


class InAppTransport(Transport):
    name = "in_app"

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        return send_per_content(content, targets, self._store)

    def _store(self, content: Content, targets: list[Target]) -> list[Result]:
        try:
            ids = deliver([t.recipient_id for t in targets], content.title, content.body, content.data)
        except DatabaseError as exc:
            raise TransportError(f"inbox write failed: {type(exc).__name__}") from None
        return sent_results(map(str, ids))
