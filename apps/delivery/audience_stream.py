"""Stream a notification's audience from PostgreSQL in keyset pages, preferences applied in SQL.

Never more than one page of ids is in memory. Per page, one query fetches the next ids in order,
and one more fetches only the exceptions within that id range: inactive users (a partial index)
and preferences that differ from the category's default. Joining every row of a 2.5M audience
against recipients and preferences made the planner scan whole tables; the exceptions are sparse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection

from . import audience_kinds
from .models import Notification

# Ids in ascending order after %(after)s, per audience kind.
_SOURCES = {
    "topic": "SELECT recipient_id FROM audience_follow WHERE topic_id = %(topic_id)s AND recipient_id > %(after)s"
             " ORDER BY topic_id, recipient_id LIMIT %(limit)s",
    "all": "SELECT id FROM audience_recipient WHERE id > %(after)s ORDER BY id LIMIT %(limit)s",
    "recipients": "SELECT id FROM audience_recipient WHERE id = ANY(%(ids)s::bigint[]) AND id > %(after)s"
                  " ORDER BY id LIMIT %(limit)s",
}

_EXCEPTIONS = """
SELECT id, 'inactive' FROM audience_recipient
WHERE NOT is_active AND id BETWEEN %(low)s AND %(high)s
UNION ALL
SELECT recipient_id, CASE WHEN enabled THEN 'opted_in' ELSE 'opted_out' END FROM preferences_preference
WHERE recipient_id BETWEEN %(low)s AND %(high)s AND category_id = %(category_id)s AND channel = %(channel)s
  AND enabled <> %(default_enabled)s
UNION ALL
SELECT recipient_id, 'suppressed' FROM receipts_suppression
WHERE channel = %(channel)s AND recipient_id BETWEEN %(low)s AND %(high)s AND lifted_at IS NULL
  AND recipient_id IS NOT NULL
"""
# When a recipient has several exceptions, the one that decides (an opt-in does not undo a suppression).
_PRECEDENCE = {"inactive": 0, "suppressed": 1, "opted_out": 2, "opted_in": 3}


@dataclass
class AudiencePage:
    sendable: list[int]
    inactive: list[int]
    opted_out: list[int]
    suppressed: list[int] = field(default_factory=list)  # apps/receipts: bounced, complained, opted out by SMS
    last: bool = False

    @property
    def size(self) -> int:
        return len(self.sendable) + len(self.inactive) + len(self.opted_out) + len(self.suppressed)


def stream_audience(notification: Notification, channel: str, page_size: int = 50_000) -> Iterator[AudiencePage]:
    source, params = _source_for(notification.audience)
    default_enabled = notification.category.default_enabled
    params |= {"limit": page_size, "category_id": notification.category_id, "channel": channel,
               "default_enabled": default_enabled}
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(source, params | {"after": after})
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return
            cursor.execute(_EXCEPTIONS, params | {"low": ids[0], "high": ids[-1]})
            exceptions = _decisive(cursor.fetchall())
        page = _split(ids, exceptions, default_enabled)
        page.last = len(ids) < page_size
        yield page
        after = ids[-1]
        if page.last:
            return


def _decisive(rows: list[tuple[int, str]]) -> dict[int, str]:
    exceptions: dict[int, str] = {}
    for recipient_id, state in rows:
        current = exceptions.get(recipient_id)
        if current is None or _PRECEDENCE[state] < _PRECEDENCE[current]:
            exceptions[recipient_id] = state
    return exceptions


def _split(ids: list[int], exceptions: dict[int, str], default_enabled: bool) -> AudiencePage:
    page = AudiencePage([], [], [])
    if not exceptions and default_enabled:
        page.sendable = ids
        return page
    for recipient_id in ids:
        state = exceptions.get(recipient_id)
        if state == "inactive":
            page.inactive.append(recipient_id)
        elif state == "suppressed":
            page.suppressed.append(recipient_id)
        elif state == "opted_out" or (state is None and not default_enabled):
            page.opted_out.append(recipient_id)
        else:
            page.sendable.append(recipient_id)
    return page


# The ids of an audience, unordered and unbounded, for a slice to filter (PostgreSQL pushes the
# keyset's `b.id > after` down into them, so a topic still reads its (topic_id, recipient_id) index).
_BASES = {
    "topic": "SELECT recipient_id AS id FROM audience_follow WHERE topic_id = %(topic_id)s",
    "all": "SELECT id FROM audience_recipient",
    "recipients": "SELECT id FROM audience_recipient WHERE id = ANY(%(ids)s::bigint[])",
}

_SLICE = """SELECT b.id FROM ({base}) AS b JOIN audience_recipient r ON r.id = b.id
WHERE b.id > %(after)s{filters} ORDER BY b.id LIMIT %(limit)s"""


def _slice_source(value: dict) -> tuple[str, dict]:
    """Part of another audience: recipients of one of `timezones` ("" is UTC) and/or with id % 100 in [from, to)."""
    kind = next(iter(value["of"]))
    _, params = _source_for(value["of"])
    if kind == "segment":
        base = f"SELECT id FROM ({_segment_ids(value['of']['segment'])}) AS seg"
    else:
        base = audience_kinds.KINDS[kind].ids_sql if kind in audience_kinds.KINDS else _BASES[kind]
    filters = ""
    if "timezones" in value:
        filters += " AND r.timezone = ANY(%(slice_timezones)s::text[])"
        params = params | {"slice_timezones": list(value["timezones"])}
    if "share" in value:
        filters += " AND b.id %% 100 >= %(slice_from)s AND b.id %% 100 < %(slice_to)s"
        params = params | {"slice_from": value["share"][0], "slice_to": value["share"][1]}
    return _SLICE.format(base=base, filters=filters), params


def _source_for(audience: dict) -> tuple[str, dict]:
    kind, value = next(iter(audience.items()))
    if kind == "slice":
        return _slice_source(value)
    if kind == "topic":
        from apps.audience.models import Topic

        topic = Topic.objects.filter(slug=value).first()
        return _SOURCES["topic"], {"topic_id": topic.pk if topic else -1}
    if kind == "recipients":
        return _SOURCES["recipients"], {"ids": sorted(set(value))}
    if kind in audience_kinds.KINDS:
        return audience_kinds.KINDS[kind].page_sql, {"kind_value": value}
    if kind == "segment":
        inner = _segment_ids(value)
        return f"SELECT id FROM ({inner}) AS seg WHERE id > %(after)s ORDER BY id LIMIT %(limit)s", {}
    return _SOURCES["all"], {}


def _segment_ids(segment_id: int) -> str:
    from apps.audience.models import Segment

    segment = Segment.objects.get(pk=segment_id)
    inner_sql, inner_params = segment.recipients().values("id").query.sql_with_params()
    # Keyset over the segment's own query; its params are positional, so inline them safely.
    with connection.cursor() as cursor:
        return cursor.mogrify(inner_sql, inner_params).decode().replace("%", "%%")
