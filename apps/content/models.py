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
