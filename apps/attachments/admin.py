"""Attachments in the admin: upload a file (the same limits as the API), choose the templates whose emails
carry it, open it through a signed link. The file itself is never replaced: upload a new one instead."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from . import links, rules, store
from .models import Attachment


class UploadForm(forms.ModelForm):
    """The add form: the file goes through store.save, which checks its name, type and size."""

    upload = forms.FileField(help_text="Small files go in the email; larger ones as a link that expires.")

    class Meta:
        model = Attachment
        fields = ("templates",)

    def clean_upload(self):  # noqa: ANN201
        upload = self.cleaned_data["upload"]
        try:
            name = rules.check_filename(upload.name)
            rules.check_content_type(upload.content_type, name)
            if upload.size > rules.max_bytes():
                raise rules.too_large(name)
        except rules.Refused as exc:
            raise ValidationError(exc.message) from None
        return upload


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("id", "filename", "content_type", "size", "uploaded_by", "created_at")
    search_fields = ("filename", "id__exact")
    list_filter = ("content_type",)
    filter_horizontal = ("templates",)
    readonly_fields = ("content_type", "size", "sha256", "uploaded_by", "created_at", "download")

    def get_form(self, request, obj=None, **kwargs):  # noqa: ANN001, ANN201
        if obj is None:
            kwargs["form"] = UploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):  # noqa: ANN001, ANN201
        if obj is None:
            return ("upload", "templates")
        return ("filename", "templates", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001, ANN201
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:  # noqa: ANN001
        if change:
            super().save_model(request, obj, form, change)
            return
        upload = form.cleaned_data["upload"]
        saved = store.save(upload.read, upload.name, upload.content_type or "",
                           uploaded_by=f"admin {request.user.get_username()}")
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding, obj._state.db = False, saved._state.db

    @admin.display(description="file")
    def download(self, obj: Attachment) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">{}</a> (a signed link that lasts an hour)',
                           links.download_url(obj.pk, max_age_seconds=3600), obj.filename)
