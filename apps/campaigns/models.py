from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.audience.models import Segment, Topic
from apps.preferences.models import Category, Channel


class Template(models.Model):
    """Message text per channel, in Django's template language."""

    name = models.CharField(max_length=200, unique=True)
    push_title = models.CharField(max_length=200, blank=True)
    push_body = models.TextField(blank=True)
    email_subject = models.CharField(max_length=200, blank=True)
    email_text = models.TextField(blank=True)
    email_html = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT)
    template = models.ForeignKey(Template, on_delete=models.PROTECT)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.PROTECT, help_text="Followers of.")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.PROTECT)
    send_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
