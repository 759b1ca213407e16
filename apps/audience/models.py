from django.db import models

from .validators import validate_timezone, validate_webhook_url


class Platform(models.TextChoices):
    FCM = "fcm", "Firebase (Android/web)"
    APNS = "apns", "Apple Push"
    WEBPUSH = "webpush", "Web Push"
    FAKE = "fake", "Fake provider (local runs)"


class Recipient(models.Model):
    """A user of the client app who can be notified. Contact points live on the row."""

    external_id = models.CharField(max_length=64, help_text="The id in the client app.")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +447700900123")
    webhook_url = models.URLField(blank=True, db_default="", validators=[validate_webhook_url],
                                  help_text="For the webhook channel: where signed POSTs go (https, a public address).")
    # Standard Webhooks secret of that endpoint (made when a URL is first set; see providers/standard_webhooks.py).
    webhook_secret = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    timezone = models.CharField(
        max_length=64, blank=True, validators=[validate_timezone], help_text="IANA name; empty means UTC."
    )
    locale = models.CharField(max_length=16, default="en")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Constraints and plain indexes rather than unique=True/db_index=True: those add a second,
        # text-pattern index per column, which doubles the cost of bulk loads for no query we run.
        constraints = [models.UniqueConstraint(fields=["external_id"], name="recipient_external_id_uniq")]
        indexes = [
            models.Index(fields=["email"], name="recipient_email_idx"),
            # Inactive users are few; the dispatcher finds them per id range through this index.
            models.Index(fields=["id"], condition=models.Q(is_active=False), name="recipient_inactive_idx"),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        # A field left to its db_default holds a DatabaseDefault expression, not a string, until read back.
        has_url = isinstance(self.webhook_url, str) and self.webhook_url
        if has_url and not (isinstance(self.webhook_secret, str) and self.webhook_secret):
            from apps.providers.standard_webhooks import new_secret

            self.webhook_secret = new_secret()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "webhook_secret"}
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.name or self.external_id


class Device(models.Model):
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    token = models.CharField(max_length=512)
    app = models.CharField(max_length=100, blank=True, db_default="", help_text="The client app, e.g. its bundle id.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token"], name="device_token_uniq")]

    def __str__(self) -> str:
        return f"{self.platform} device of {self.recipient_id}"


class Topic(models.Model):
    """Something users follow, e.g. a football team."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class Follow(models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="follows", db_index=False)
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # (topic, recipient) is the keyset the dispatcher streams an audience by.
        constraints = [models.UniqueConstraint(fields=["topic", "recipient"], name="follow_topic_recipient_uniq")]

    def __str__(self) -> str:
        return f"{self.recipient_id} follows {self.topic_id}"


class Segment(models.Model):
    """A saved audience built from filters on recipients (see SEGMENT_FILTERS)."""

    SEGMENT_FILTERS = {"locale": "locale", "timezone": "timezone", "topic": "follows__topic__slug"}

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    filters = models.JSONField(default=dict, blank=True, help_text='e.g. {"locale": "en", "topic": "arsenal"}')

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not isinstance(self.filters, dict):
            raise ValidationError({"filters": "Must be an object of field: value."})
        unknown = sorted(set(self.filters) - set(self.SEGMENT_FILTERS))
        if unknown:
            raise ValidationError({"filters": f"Unknown filter(s) {unknown}; allowed: {sorted(self.SEGMENT_FILTERS)}"})

    def recipients(self) -> models.QuerySet:
        lookups = {self.SEGMENT_FILTERS[key]: value for key, value in self.filters.items()}
        return Recipient.objects.filter(is_active=True, **lookups)

    def __str__(self) -> str:
        return self.name
