"""Checks on JSON that comes from outside, whatever the door: HTTP bodies, notify(), signals, Kafka.

PostgreSQL text and jsonb cannot hold a NUL character, jsonb refuses NaN and Infinity, Python's
decoder raises RecursionError on deep nesting, and ids beyond a column's range fail the query:
each would surface as a crash far from the input. These checks refuse them at the door, naming
the field, so every source gets the same error.
"""

from __future__ import annotations

import json

MAX_DEPTH = 32  # nesting levels a request may use; real requests use 3 or 4
BIGINT_MAX = 2**63 - 1


class RequestError(ValueError):
    """Bad input, with the field it concerns (a dotted path, e.g. "context.team")."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def decode(raw: bytes | str, field_name: str = "body") -> object:
    """Parse JSON text, refusing what json.loads accepts but nothing downstream can store (NaN and
    Infinity are parsed, so that check_storable names their field)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise RequestError(field_name, f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise RequestError(field_name, "not valid JSON") from None
    check_storable(data, field_name)
    return data


def check_storable(value: object, field_name: str = "body") -> None:
    """Refuse NUL characters, nesting deeper than MAX_DEPTH, non-finite floats and non-JSON types."""
    pending: list[tuple[object, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        where = path or field_name
        if depth > MAX_DEPTH:
            raise RequestError(where, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            if "\x00" in item:
                raise RequestError(where, "text must not contain NUL (\\u0000) characters")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise RequestError(where, "object keys must be text")
                if "\x00" in key:
                    raise RequestError(where, "keys must not contain NUL (\\u0000) characters")
                pending.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list | tuple):
            pending.extend((child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise RequestError(where, "numbers must be finite")
        elif isinstance(item, int) and item.bit_length() > 14_000:  # Python turns ints of ~4,300 digits into text
            raise RequestError(where, "numbers must have at most 4,000 digits")
        elif item is not None and not isinstance(item, bool | int):
            raise RequestError(where, f"{type(item).__name__} is not a JSON value")


def is_int(value: object, low: int = 1, high: int = BIGINT_MAX) -> bool:
    """A whole number (not a bool) in low..high."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
