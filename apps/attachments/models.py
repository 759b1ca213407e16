"""Email attachments: the file lives in the "attachments" storage (filesystem or S3), its facts here."""

from __future__ import annotations

from django.db import models

from apps.content.models import Template
from apps.delivery.models import ApiKey, Notification


class Attachment(models.Model):
    """One uploaded file. `storage_key` names it in settings.STORAGES["attachments"]; never a name the
    uploader chose, so no upload can reach another's key or a path outside the storage."""

    storage_key = models.CharField(max_length=200, unique=True, editable=False)
    filename = models.CharField(max_length=200, help_text="The name the recipient sees.")
    content_type = models.CharField(max_length=100, editable=False)
    size = models.PositiveBigIntegerField(editable=False, help_text="Bytes.")
    sha256 = models.CharField(max_length=64, editable=False)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                editable=False, help_text="The API key that uploaded it: only that key may send it.")
    uploaded_by = models.CharField(max_length=200, blank=True, editable=False)
    templates = models.ManyToManyField(Template, blank=True, related_name="attachments",
                                       help_text="Emails from these templates carry this file.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.pk} {self.filename}"


class NotificationAttachment(models.Model):
    """The files a notification's emails carry, in the order the request named them."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="+")
    attachment = models.ForeignKey(Attachment, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "attachment"],
                                               name="notification_attachment_uniq")]

    def __str__(self) -> str:
        return f"notification {self.notification_id}: attachment {self.attachment_id}"
