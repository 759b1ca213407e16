"""An email's attachments on the wire: small files as MIME parts, large ones as links in the text and HTML.

The files of one provider call are fetched once (`fetch`), before its first mail: a call of 500 recipients
reads each file from storage (S3) once, not 500 times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from html import escape

from django.core.mail import EmailMultiAlternatives

from .base import Attachment, Content


class Unavailable(Exception):  # noqa: N818
    """A file could not be read from storage: the call's mails are tried again later."""


def fetch(contents: Iterable[Content]) -> dict[Attachment, bytes | str]:
    """Each distinct attachment of these contents once: a small one's bytes, a large one's signed link."""
    fetched: dict[Attachment, bytes | str] = {}
    for content in contents:
        for part in content.attachments:
            if part in fetched:
                continue
            try:
                fetched[part] = part.read() if part.read is not None else part.link()  # type: ignore[misc]
            except Exception as exc:  # storage down, file gone: the message cannot be built now
                raise Unavailable(f"attachment {part.filename!r} unavailable: {type(exc).__name__}") from None
    return fetched


def with_links(content: Content, fetched: dict[Attachment, bytes | str]) -> Content:
    """The content with a list of the large files' links after its text (and in its HTML, before </body>)."""
    linked = [(part, fetched[part]) for part in content.attachments if part.read is None]
    if not linked:
        return content
    body = content.body + "\n\nAttachments (the links expire):\n" + "\n".join(
        f"- {part.filename} ({_size(part.size)}): {url}" for part, url in linked)
    html = content.html
    if html:
        items = "".join(f'<li><a href="{escape(str(url))}">{escape(part.filename)}</a> ({_size(part.size)})</li>'
                        for part, url in linked)
        block = f"<p>Attachments (the links expire):</p><ul>{items}</ul>"
        at = html.lower().rfind("</body>")
        html = html[:at] + block + html[at:] if at >= 0 else html + block
    return replace(content, body=body, html=html)


def add_parts(mail: EmailMultiAlternatives, content: Content, fetched: dict[Attachment, bytes | str]) -> None:
    for part in content.attachments:
        if part.read is not None:
            mail.attach(part.filename, fetched[part], part.content_type)


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
