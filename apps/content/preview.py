"""The live preview beside the template and campaign forms: the message as a chosen user (and locale) would get
it, from the form's unsaved values (JSON for the admin's compose script)."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse

from apps.audience.models import Recipient
from apps.preferences.models import Category

from . import template_checks
from .models import Template


def _pk(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def render_preview(request: HttpRequest) -> JsonResponse:
    """The message as a chosen user (and locale) would get it, from the form's unsaved values."""
    data = request.POST
    template = Template.objects.filter(pk=_pk(data.get("template"))).first() if "template" in data else None
    if "template" in data and template is None:
        return JsonResponse({"error": "Choose a template to preview."})
    if template is None:
        template = Template(**{name: data.get(name, "") for name in Template.TEXT_FIELDS})
    try:
        context = json.loads(data.get("context") or data.get("sample_context") or "{}")
    except ValueError:
        return JsonResponse({"error": "The context is not valid JSON."})
    if not isinstance(context, dict):
        return JsonResponse({"error": "The context must be a JSON object."})
    if "context" not in data:
        context = {**(template.sample_context or {}), **context}
    recipient, note = dict(template_checks.SAMPLE_RECIPIENT), "a sample user"
    external_id = data.get("recipient", "").strip()
    if external_id:
        found = Recipient.objects.filter(external_id=external_id).first()
        if found is None:
            note = f"no user {external_id!r}: a sample user"
        else:
            recipient = {"name": found.name, "external_id": found.external_id, "locale": found.locale}
            note = f"user {external_id}"
    locale = data.get("locale", "").strip()
    if locale:
        recipient["locale"] = locale
        note += f", locale {locale}"
    category = Category.objects.filter(pk=_pk(data.get("category"))).first()
    shown = template_checks.preview(template, context, recipient,
                                    unsubscribable=not (category and category.is_transactional))
    length, segments, encoding = template_checks.sms_segments(shown["sms_text"])
    return JsonResponse({"fields": shown, "note": f"As {note} would get it.",
                         "sms": f"{length} characters, {segments} segment(s), {encoding}"})
