"""Render a notification's text for one channel, and for one recipient where the text asks for it.

Templates are Django's template language. A variable that does not resolve is an error, not an empty
hole ("Hi , ..."): the recipient it concerns fails with the reason, and the rest of the batch goes
on. `recipient` holds only the fields a recipient has filled in (name, external_id, locale), so
"Hi {{ recipient.name }}" fails exactly the recipients without a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.template import Context, TemplateSyntaxError

from apps.core import channels, safe_text
from apps.providers.base import Content
from apps.providers.unsubscribe import UNSUBSCRIBE_MARK

_MARK = "\x00"
_ENGINE = safe_text.engine(string_if_invalid=f"{_MARK}%s{_MARK}", autoescape=False)
_MISSING = re.compile(f"{_MARK}(.*?){_MARK}")
_HTML_ENGINE = safe_text.engine(string_if_invalid=f"{_MARK}%s{_MARK}", autoescape=True)


class RenderError(ValueError):
    pass


@dataclass(frozen=True)
class ChannelTexts:
    title: str
    body: str
    html: str = ""
    variables_only: bool = False  # a notification's own text: {{ variable }} substitution, nothing else

    @property
    def personal(self) -> bool:
        return any("recipient" in text for text in (self.title, self.body, self.html))


def texts_for(channel: str, title: str, body: str, template, locale: str = "") -> ChannelTexts:  # noqa: ANN001
    """The notification's own title/body, or its template's text for this channel (in `locale`'s variant, if
    the template has one: see Template.localized)."""
    if template is None:
        return ChannelTexts(title, body, variables_only=True)
    template = template.localized(locale) if locale else template
    spec = channels.spec(channel)
    return ChannelTexts(_first(template, spec.title_fields), _first(template, spec.body_fields),
                        _first(template, spec.html_fields))


def _first(template, names: tuple[str, ...]) -> str:  # noqa: ANN001
    return next((text for text in (template.text(name) for name in names) if text), "")


def render(texts: ChannelTexts, context: dict, recipient: dict | None = None) -> Content:
    """Raises RenderError naming what failed (a missing variable, a syntax error, a failing tag)."""
    values = _values(context, recipient)
    only = texts.variables_only
    return Content(title=_render(texts.title, values, variables_only=only),
                   body=_render(texts.body, values, variables_only=only),
                   html=_render(texts.html, values, html=True) if texts.html else "")


def render_text(text: str, context: dict, recipient: dict | None = None, html: bool = False) -> str:
    """One text with the context and, if given, the recipient (raises RenderError)."""
    return _render(text, _values(context, recipient), html)


def _values(context: dict, recipient: dict | None) -> dict:
    """What a text may use: the context, the unsubscribe mark, and the recipient's filled-in fields."""
    values = {"unsubscribe_url": UNSUBSCRIBE_MARK, **context}
    if recipient is not None:
        values["recipient"] = {k: v for k, v in recipient.items() if v not in ("", None)}
    return values


def _render(text: str, values: dict, html: bool = False, variables_only: bool = False) -> str:
    if "{" not in text:
        return text
    try:
        if variables_only:
            return safe_text.substitute(text, values, html)
        output = safe_text.cap(_compile(html, text).render(Context(values, autoescape=html)))
    except safe_text.MissingVariable as exc:
        raise RenderError(f"template: missing variable {exc}") from None
    except safe_text.OverBudget as exc:
        raise RenderError(f"template: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc}") from None
    except Exception as exc:  # a tag or filter that raises: the message cannot be built
        raise RenderError(f"template: {type(exc).__name__}: {exc}") from None
    missing = _MISSING.search(output)
    if missing:
        raise RenderError(f"template: missing variable {missing.group(1) or '(unnamed)'}")
    return output


@lru_cache(maxsize=128)
def _compile(html: bool, text: str):  # noqa: ANN202
    return (_HTML_ENGINE if html else _ENGINE).from_string(text)
