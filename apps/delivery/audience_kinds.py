"""Audience kinds that another app provides (campaigns: a campaign's uploaded list, `{"campaign": id}`).

The pipeline validates, counts and streams them through what the providing app registered when it was
ready, so delivery imports no app above it. The built-in kinds (topic, segment, recipients, all) live in
requests.py and audience_stream.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class AudienceKind:
    name: str
    exists: Callable[[int], bool]  # the id names something that exists
    rows: Callable[[int], QuerySet]  # its recipients, for a bounded count (one row per recipient)
    # Its recipient ids as `id`, with the id given as %(kind_value)s: unordered (a slice filters it) ...
    ids_sql: str
    # ... and the next page after %(after)s in id order, at most %(limit)s, reading an index on (owner, recipient)
    page_sql: str


KINDS: dict[str, AudienceKind] = {}


def register(kind: AudienceKind) -> None:
    KINDS[kind.name] = kind
