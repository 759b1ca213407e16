"""Callback endpoints of the calling services, the signed messages sent to them, and every attempt.

A message's id is its `webhook-id`: made from (endpoint, event, notification, part), so it is the same
on every retry and a second finalize of the same notification cannot make a second message.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.delivery.models import ApiKey


class EventType(models.TextChoices):
    NOTIFICATION_COMPLETED = "notification.completed", "a notification completed, with its counts"
    DELIVERY_FAILED = "delivery.failed", "recipients that failed for good (batched)"
    DELIVERY_DEAD_LETTERED = "delivery.dead_lettered", "recipients dead-lettered after their attempts (batched)"


class CallbackEndpoint(models.Model):
    """Where an API key's notifications report to. The secret signs every message (Standard Webhooks);
    it is shown once, when the endpoint is created, and never again (not in the admin, not in logs)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="callback_endpoints")
    url = models.URLField(max_length=2000, help_text="https, resolving only to public addresses.")
    secret = models.CharField(max_length=64, editable=False)
    # notification.completed goes to every endpoint; these are the batched outcome events it asked for too.
    event_types = ArrayField(models.CharField(max_length=32, choices=EventType.choices), default=list, blank=True,
                             help_text="Besides notification.completed: delivery.failed, delivery.dead_lettered.")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def wants(self, event_type: str) -> bool:
        return event_type == EventType.NOTIFICATION_COMPLETED or event_type in self.event_types

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"


class MessageStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed", "failed (attempts exhausted or refused)"


class CallbackMessage(models.Model):
    id = models.CharField(primary_key=True, max_length=100, help_text="The webhook-id, stable across retries.")
    endpoint = models.ForeignKey(CallbackEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    notification_id = models.BigIntegerField(db_index=True)
    payload = models.TextField(help_text="The exact body sent on every attempt.")
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True, help_text="An attempt is under way until then.")
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"),
                                name="callback_message_due_idx")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class CallbackAttempt(models.Model):
    """The delivery log: one row per attempt (never the secret, never the body)."""

    message = models.ForeignKey(CallbackMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no answer.")
    latency_ms = models.FloatField()
    error = models.CharField(max_length=300, blank=True)
    attempted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="callback_attempt_number_uniq")]

    def __str__(self) -> str:
        return f"{self.message_id} attempt {self.number}: {self.status_code or self.error[:40]}"
