from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from apps.audience.models import Recipient
from apps.core.channels import Channel, Priority


class CategoryKind(models.TextChoices):
    TRANSACTIONAL = "transactional", "Transactional"
    ALERTS = "alerts", "Alerts"
    PROMOTIONAL = "promotional", "Promotional"


class Category(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=CategoryKind.choices)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    default_enabled = models.BooleanField(
        default=True, help_text="Opt-in (on) or opt-out (off) for users with no preference of their own."
    )
    daily_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many per user per day; empty means no cap."
    )
    max_attempts = models.PositiveSmallIntegerField(default=5, help_text="Provider attempts before dead-lettering.")
    ttl_seconds = models.PositiveIntegerField(default=86400, help_text="How long a notification may wait (deferral).")
    required_channels = ArrayField(
        models.CharField(max_length=16, choices=Channel.choices), default=list, blank=True,
        help_text="Transactional only: channels a user cannot turn off (e.g. email for security codes).",
    )

    class Meta:
        verbose_name_plural = "categories"

    @property
    def is_transactional(self) -> bool:
        return self.kind == CategoryKind.TRANSACTIONAL

    def can_turn_off(self, channel: str) -> bool:
        return not (self.is_transactional and channel in self.required_channels)

    def clean(self) -> None:
        if self.is_transactional and not self.default_enabled:
            raise ValidationError({"default_enabled": "Transactional categories are always on by default."})
        if self.required_channels and not self.is_transactional:
            raise ValidationError({"required_channels": "Only transactional categories can require a channel."})
        if self.max_attempts < 1:
            raise ValidationError({"max_attempts": "At least one attempt."})

    def __str__(self) -> str:
        return self.name


class Preference(models.Model):
    """A user's own choice for one category on one channel; absent means the category default."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="preferences")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="preferences")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "category", "channel"], name="preference_uniq"),
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.recipient_id} {self.category_id}/{self.channel}: {state}"


class QuietHours(models.Model):
    """A user's daily quiet window in their own timezone (Recipient.timezone; empty means UTC).

    Non-transactional notifications that fall inside it are deferred until it ends. A window may
    cross midnight (22:00-07:00).
    """

    recipient = models.OneToOneField(Recipient, on_delete=models.CASCADE, related_name="quiet_hours")
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        verbose_name_plural = "quiet hours"

    def clean(self) -> None:
        if self.start == self.end:
            raise ValidationError({"end": "The window must not be empty: start and end differ."})

    def __str__(self) -> str:
        return f"{self.recipient_id} quiet {self.start:%H:%M}-{self.end:%H:%M}"
