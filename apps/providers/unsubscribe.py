"""The unsubscribe link of a promotional email: rendering leaves a mark where {{ unsubscribe_url }} stood, and
the email transport puts each recipient's own signed link there (and in a default footer when the template
has none), so that one rendering serves a whole provider call."""

from __future__ import annotations

from dataclasses import replace
from html import escape

from .base import Content

# {{ unsubscribe_url }} renders as this mark; the email transport puts each recipient's signed link in
# its place (one shared rendering serves a whole batch), or removes it where there is no link.
UNSUBSCRIBE_MARK = "\x01unsubscribe_url\x01"


def with_unsubscribe(content: Content, url: str | None) -> Content:
    """An email's content with its unsubscribe link in place of {{ unsubscribe_url }}; a text or HTML
    body that has no such link gets a default footer with one. Without a url the marks are removed."""
    body, html = content.body, content.html
    if url:
        if UNSUBSCRIBE_MARK not in body:
            body += "\n\n--\nUnsubscribe: " + UNSUBSCRIBE_MARK
        if html and UNSUBSCRIBE_MARK not in html:
            footer = f'<p style="font-size:12px;color:#666"><a href="{UNSUBSCRIBE_MARK}">Unsubscribe</a></p>'
            at = html.lower().rfind("</body>")
            html = html[:at] + footer + html[at:] if at >= 0 else html + footer
    elif UNSUBSCRIBE_MARK not in body + html + content.title:
        return content
    return replace(content, title=content.title.replace(UNSUBSCRIBE_MARK, url or ""),
                   body=body.replace(UNSUBSCRIBE_MARK, url or ""),
                   html=html.replace(UNSUBSCRIBE_MARK, escape(url or "")))
