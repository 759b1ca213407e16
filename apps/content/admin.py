"""Templates in the admin: checked at each field on save, with a live preview beside the form."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.audience.models import Recipient

from . import preview, template_checks
from .models import Template, TemplateLocale

PREVIEW_LABELS = {"push_title": "Push title", "push_body": "Push body", "email_subject": "Email subject",
                  "email_text": "Email text", "email_html": "Email HTML", "sms_text": "SMS"}


def preview_context(url: str, fields: str) -> dict:
    """What templates/admin/content/preview_panel.html needs."""
    return {"preview_url": url, "preview_fields": fields, "preview_labels": PREVIEW_LABELS.items()}


class TemplateLocaleInline(admin.StackedInline):
    """The template's text in other locales; a recipient gets their locale's, else their language's, else the
    template's own (pt-BR, then pt, then the default). An empty field takes the template's."""

    model = TemplateLocale
    extra = 0
    fields = ("locale", *Template.TEXT_FIELDS)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    inlines = [TemplateLocaleInline]
    list_display = ("name", "push_title", "email_subject", "updated_at")
    search_fields = ("name", "push_title", "email_subject")
    readonly_fields = ("sms_info", "preview")
    change_form_template = "admin/content/template/change_form.html"

    class Media:
        css = {"all": ["campaigns/compose.css"]}
        js = ["campaigns/compose.js"]

    @admin.display(description="SMS length")
    def sms_info(self, obj: Template) -> str:
        length, segments, encoding = template_checks.sms_segments(obj.sms_text or "")
        return f"{length} characters, {segments} segment(s), {encoding} (with the sample values: see the preview)"

    @admin.display(description="Full-page preview")
    def preview(self, obj: Template) -> str:
        if not obj.pk:
            return "The preview beside the form shows the unsaved text."
        url = reverse("admin:content_template_preview", args=[obj.pk])
        return format_html('<a href="{}">Open the saved template with the sample values</a>', url)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # noqa: ANN001, ANN201
        fields = ",".join([*Template.TEXT_FIELDS, "sample_context"])
        extra = preview_context(reverse("admin:content_template_render"), fields)
        return super().changeform_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self):  # noqa: ANN201
        return [path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="content_template_preview"),
                path("render/", self.admin_site.admin_view(self.render_view), name="content_template_render"),
                *super().get_urls()]

    def render_view(self, request: HttpRequest) -> JsonResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        return preview.render_preview(request)

    def preview_view(self, request: HttpRequest, pk: int) -> TemplateResponse:
        template = get_object_or_404(Template, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        sample, note = dict(template_checks.SAMPLE_RECIPIENT), "a sample recipient"
        external_id = request.GET.get("recipient", "").strip()
        if external_id:
            recipient = Recipient.objects.filter(external_id=external_id).first()
            if recipient is None:
                note = f"no user {external_id!r}: showing a sample recipient"
            else:
                sample = {"name": recipient.name, "external_id": recipient.external_id, "locale": recipient.locale}
                note = f"user {external_id}"
        shown = template_checks.preview(template, dict(template.sample_context or {}), sample)
        length, segments, encoding = template_checks.sms_segments(shown["sms_text"])
        return TemplateResponse(request, "admin/content/template_preview.html", {
            **self.admin_site.each_context(request), "title": f"Preview of {template}", "template_obj": template,
            "shown": shown, "note": note, "sms": f"{length} characters, {segments} segment(s), {encoding}"})
