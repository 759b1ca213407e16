"""Bounds on what rendering a message may cost.

A notification's own title and body (from the API, Kafka, notify()) are text with {{ variable }}
substitution only: `{{ team }}`, `{{ recipient.name }}`. Tags, filters and comments are refused at the
door (parse_request) and inert when rendered, so a caller cannot make a worker run
`{% lorem 999999999 w %}`. Templates written in the admin keep Django's template language without the
tags and filters that make output out of nothing (lorem, debug, include, padding and precision
filters), with a budget of loop iterations. Every rendering is capped at MAX_OUTPUT_CHARS.
"""

from __future__ import annotations

import re

from django.template import Engine, Library, Node, defaultfilters, defaulttags
from django.utils.html import conditional_escape

MAX_OUTPUT_CHARS = 100_000
MAX_LOOP_ITERATIONS = 1_000
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.\w+)*)\s*\}\}")
_SYNTAX = re.compile(r"\{[{%#]")
# Tags and filters whose output can be far larger than the template and its context.
BANNED_TAGS = frozenset({"lorem", "debug", "load"})
BANNED_FILTERS = frozenset({"center", "ljust", "rjust", "stringformat", "floatformat", "pprint"})


class OverBudget(ValueError):
    pass


class MissingVariable(ValueError):
    pass


def syntax_problem(text: str) -> str | None:
    """Why text is not plain text with {{ variable }} substitutions, or None."""
    rest = _VARIABLE.sub("", text)
    found = _SYNTAX.search(rest)
    if found is None:
        return None
    return (f"only {{{{ variable }}}} substitution is allowed, not template tags, filters or comments"
            f" (found {rest[found.start():found.start() + 20]!r})")


def substitute(text: str, values: dict, html: bool = False) -> str:
    """Each {{ name }} or {{ a.b.0 }} replaced by its value (dict keys and list indices only); everything
    else is literal text. Raises MissingVariable naming the first that does not resolve."""

    def value_of(match: re.Match) -> str:
        value: object = values
        for part in match.group(1).split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise MissingVariable(match.group(1))
        shown = "" if value is None else str(value)
        return str(conditional_escape(shown)) if html else shown

    return cap(_VARIABLE.sub(value_of, text))


def cap(output: str) -> str:
    if len(output) > MAX_OUTPUT_CHARS:
        raise OverBudget(f"rendered text longer than {MAX_OUTPUT_CHARS} characters")
    return output


class _LoopTick(Node):
    """First node of every {% for %} body: counts the iterations of one rendering."""

    def render(self, context) -> str:  # noqa: ANN001
        ticks = context.render_context.get(_LoopTick, 0) + 1
        if ticks > MAX_LOOP_ITERATIONS:
            raise OverBudget(f"more than {MAX_LOOP_ITERATIONS} loop iterations")
        context.render_context[_LoopTick] = ticks
        return ""


def _budgeted_for(parser, token) -> Node:  # noqa: ANN001
    node = defaulttags.do_for(parser, token)
    node.nodelist_loop.insert(0, _LoopTick())
    return node


def _library() -> Library:
    library = Library()
    library.tags = {name: tag for name, tag in defaulttags.register.tags.items() if name not in BANNED_TAGS}
    library.tags["for"] = _budgeted_for
    library.filters = {name: f for name, f in defaultfilters.register.filters.items() if name not in BANNED_FILTERS}
    return library


def engine(string_if_invalid: str, autoescape: bool) -> Engine:
    """An Engine with only the bounded builtins: no include/extends, no {% load %}."""
    restricted = Engine(string_if_invalid=string_if_invalid, autoescape=autoescape)
    restricted.template_builtins = [_library()]
    return restricted
