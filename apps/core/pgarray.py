"""PostgreSQL array literals built in one join: psycopg2 adapts a Python list element by element,
which cost more than the INSERT itself for a 500-row batch."""

from __future__ import annotations

from collections.abc import Iterable


def int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: list[str]) -> str:
    if not values:
        return "{}"
    flat = "".join(values)  # the elements alone: the '","' separators must not trigger the escaping
    if '"' in flat or "\\" in flat:  # rare: escape each element
        return '{"' + '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'
    return '{"' + '","'.join(values) + '"}'

