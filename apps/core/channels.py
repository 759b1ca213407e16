"""The channels a notification goes out on, and the priorities that keep OTP codes ahead of a blast."""

from django.db import models


class Channel(models.TextChoices):
    PUSH = "push", "Push"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"
    WEBHOOK = "webhook", "Webhook"


class Priority(models.TextChoices):
    HIGH = "high", "High (OTP, security)"
    NORMAL = "normal", "Normal"
    LOW = "low", "Low (marketing)"
