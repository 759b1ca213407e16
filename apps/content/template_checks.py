"""Checks on a template before it is saved, its preview, and the SMS length and segment count."""

from __future__ import annotations

from apps.providers.unsubscribe import UNSUBSCRIBE_MARK, with_unsubscribe

from . import rendering

SAMPLE_RECIPIENT = {"name": "Ada Lovelace", "external_id": "user-1", "locale": "en"}
SAMPLE_UNSUBSCRIBE_URL = "https://example.invalid/unsubscribe/sample"
EMAIL_FIELDS = ("email_subject", "email_text", "email_html")

# GSM 03.38 basic set (plus the extension table, which costs two characters each).
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
            "¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENDED = set("^{}\\[~]|€")


def template_errors(template) -> dict[str, str]:  # noqa: ANN001
    """Per field, what keeps it from rendering with the sample context and a sample recipient."""
    errors = {}
    for name in template.TEXT_FIELDS:
        text = getattr(template, name) or ""
        try:
            rendering.render_text(text, dict(template.sample_context or {}), SAMPLE_RECIPIENT,
                                  html=name == "email_html")
        except rendering.RenderError as exc:
            hint = " (add it to the sample context, or use recipient.name / external_id / locale)" \
                if "missing variable" in str(exc) else ""
            errors[name] = f"{exc}{hint}"
            continue
        if "unsubscribe_url" in text and name not in EMAIL_FIELDS:
            errors[name] = "unsubscribe_url is for email only: only an email carries an unsubscribe link"
    return errors


def context_errors(template, context: dict, channels: list[str]) -> list[str]:  # noqa: ANN001
    """What keeps the campaign's messages from rendering with its context, per channel it sends on."""
    errors: list[str] = []
    for channel in channels:
        texts = rendering.texts_for(channel, "", "", template)
        try:
            rendering.render(texts, context, SAMPLE_RECIPIENT)
        except rendering.RenderError as exc:
            words = str(exc)
            if "missing variable" in words:
                name = words.rsplit(" ", 1)[-1]
                words = f"the {channel} text uses {{{{ {name} }}}}, which this context does not give: add \"{name}\""
            if words not in errors:
                errors.append(words)
    return errors


def preview(template, context: dict, recipient: dict, unsubscribable: bool = True) -> dict[str, str]:  # noqa: ANN001
    """Each channel's text as `recipient` would get it; a field that cannot render shows why. Email
    gets the unsubscribe link (a sample one) or default footer it would get, for a promotional category."""
    from apps.providers.base import Content

    shown = {}
    template = template.localized(recipient.get("locale", ""))
    for name in template.TEXT_FIELDS:
        text = template.text(name) or ""
        try:
            shown[name] = rendering.render_text(text, context, recipient, html=name == "email_html")
        except rendering.RenderError as exc:
            shown[name] = f"[cannot render: {exc}]"
    email = with_unsubscribe(
        Content(title=shown["email_subject"], body=shown["email_text"] or shown["push_body"], html=shown["email_html"]),
        SAMPLE_UNSUBSCRIBE_URL if unsubscribable else None)
    shown["email_subject"], shown["email_text"], shown["email_html"] = email.title, email.body, email.html
    for name in template.TEXT_FIELDS:
        shown[name] = shown[name].replace(UNSUBSCRIBE_MARK, "")
    return shown


def sms_segments(text: str) -> tuple[int, int, str]:
    """(length in characters as sent, segments, encoding) for an SMS body."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        length = len(text) + sum(c in _GSM7_EXTENDED for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if length <= single:
        return length, 1 if length else 0, encoding
    return length, -(-length // multi), encoding
