"""How the pipeline reaches email attachments without importing the app that keeps them: apps/attachments
registers these functions when it is ready (its AppConfig), as an app above delivery must (the layers point down).
Without it, a request naming attachments is refused and emails carry none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apps.core.json_checks import RequestError


@dataclass(frozen=True)
class AttachmentHooks:
    parse_ids: Callable[[object], list[int]]  # a request's "attachments" -> ids; raises RequestError
    check_allowed: Callable[..., None]  # (ids, api_key, event_source): may this sender name them?
    attach: Callable[[int, list[int]], None]  # record (notification id, ids), inside the notification's transaction
    ids_of: Callable[[int], list[int]]  # a notification's ids, in order
    email_parts: Callable[[int, int | None], tuple]  # (notification id, template id) -> providers.base.Attachment


_hooks: AttachmentHooks | None = None


def register(hooks: AttachmentHooks) -> None:
    global _hooks
    _hooks = hooks


def parse_ids(value: object) -> list[int]:
    if _hooks is None:
        raise RequestError("attachments", "attachments are not enabled on this platform")
    return _hooks.parse_ids(value)


def check_allowed(ids: list[int], api_key=None, event_source=None) -> None:  # noqa: ANN001
    if ids and _hooks is not None:
        _hooks.check_allowed(ids, api_key, event_source)


def attach(notification_id: int, ids: list[int]) -> None:
    if ids and _hooks is not None:
        _hooks.attach(notification_id, ids)


def ids_of(notification_id: int) -> list[int]:
    return _hooks.ids_of(notification_id) if _hooks is not None else []


def email_parts(notification_id: int, template_id: int | None) -> tuple:
    return _hooks.email_parts(notification_id, template_id) if _hooks is not None else ()
