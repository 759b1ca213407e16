from __future__ import annotations

from django.conf.locale import LANG_INFO
from django.core.exceptions import ValidationError
from django.db import models


class Template(models.Model):
    """Message text per channel, in Django's template language.

    Templates may use `recipient.name`, `recipient.external_id`, `recipient.locale` and the
    campaign's context; `sample_context` holds example values, used for validation and preview.
    """

    name = models.CharField(max_length=200, unique=True)
    push_title = models.CharField(max_length=200, blank=True)
    push_body = models.TextField(blank=True)
    email_subject = models.CharField(max_length=200, blank=True)
    email_text = models.TextField(blank=True)
    email_html = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)
    sample_context = models.JSONField(default=dict, blank=True, help_text='Example values, e.g. {"team": "Arsenal"}')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "campaigns_template"  # made by the campaigns app before templates had an app of their own

    TEXT_FIELDS = ("push_title", "push_body", "email_subject", "email_text", "email_html", "sms_text")

    def clean(self) -> None:
        from .template_checks import template_errors

        if not isinstance(self.sample_context, dict):
            raise ValidationError({"sample_context": "Must be a JSON object of name: value."})
        errors = template_errors(self)
        if errors:
            raise ValidationError(errors)
        if not any(getattr(self, name) for name in self.TEXT_FIELDS):
            raise ValidationError("Write the text for at least one channel.")

    def __str__(self) -> str:
        return self.name

    def text(self, name: str) -> str:
        return getattr(self, name)

    def localized(self, locale: str) -> Template | TemplateLocale:
        """The text a recipient of `locale` gets: the variant of that locale, else of its language (pt-BR, then
        pt), else this template's own. A variant's empty field falls back to the template's."""
        variants = self.locale_variants()
        for key in locale_chain(locale):
            if key in variants:
                return variants[key]
        return self

    def locale_variants(self) -> dict[str, TemplateLocale]:
        if not hasattr(self, "_locale_variants"):  # once per instance: the sender keeps one per notification
            self._locale_variants = {v.locale: v for v in self.locales.all()} if self.pk else {}
        return self._locale_variants


def locale_chain(locale: str) -> list[str]:
    """pt-BR -> ["pt-br", "pt"]; "" -> []."""
    key = (locale or "").strip().lower().replace("_", "-")
    return [key, key.split("-")[0]] if "-" in key else [key] if key else []


def validate_locale(value: str) -> None:
    if value.lower().replace("_", "-") not in LANG_INFO:
        raise ValidationError(f"{value!r} is not a known locale (e.g. en, es, pt, pt-BR)")


class TemplateLocale(models.Model):
    """A template's text in one locale; an empty field takes the template's own."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="locales")
    locale = models.CharField(max_length=16, validators=[validate_locale], help_text="e.g. es, pt, pt-BR")
    push_title = models.CharField(max_length=200, blank=True)
    push_body = models.TextField(blank=True)
    email_subject = models.CharField(max_length=200, blank=True)
    email_text = models.TextField(blank=True)
    email_html = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "locale"], name="one_variant_per_locale")]

    def save(self, *args, **kwargs) -> None:
        self.locale = self.locale.strip().lower().replace("_", "-")
        super().save(*args, **kwargs)

    def text(self, name: str) -> str:
        return getattr(self, name) or self.template.text(name)

    def clean(self) -> None:
        from .template_checks import template_errors

        if not any(getattr(self, name) for name in self.TEXT_FIELDS):
            raise ValidationError("Write the text of at least one field in this locale.")
        errors = template_errors(self)
        if errors:
            raise ValidationError(errors)

    @property
    def sample_context(self) -> dict:
        return self.template.sample_context

    TEXT_FIELDS = Template.TEXT_FIELDS

    def __str__(self) -> str:
        return f"{self.template} ({self.locale})"
