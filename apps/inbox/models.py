from django.db import models

from apps.audience.models import Recipient


class InboxMessage(models.Model):
    """One in-app notification in a user's inbox."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="inbox", db_index=False)
    title = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["recipient", "-id"], name="inbox_recipient_newest_idx")]

    def as_json(self) -> dict:
        return {"id": self.pk, "title": self.title, "body": self.body, "data": self.data,
                "created_at": self.created_at.isoformat(), "read": self.read_at is not None}

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.title[:40]}"
