import hashlib

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.audience.models import Recipient
from apps.content.models import Template
from apps.core.channels import SPECS, Channel
from apps.preferences.models import Category

# Channel codes packed into Delivery.id (each spec's own; never renumbered).
CHANNEL_CODES = {name: spec.code for name, spec in SPECS.items()}
CHANNEL_BY_CODE = {code: channel for channel, code in CHANNEL_CODES.items()}
# Delivery.id packs (notification, channel, recipient) into a bigint's 63 bits: 32 for the notification
# (4.29 billion notifications), 3 for the channel, 28 for the recipient (268 million recipients).
NOTIFICATION_BITS, CHANNEL_BITS, RECIPIENT_BITS = 32, 3, 28
MAX_NOTIFICATION_ID = 2**NOTIFICATION_BITS - 1
MAX_RECIPIENT_ID = 2**RECIPIENT_BITS - 1
NOTIFICATION_SHIFT = CHANNEL_BITS + RECIPIENT_BITS


def check_key_range(notification_id: int, recipient_id: int = 1) -> None:
    if not 0 < notification_id <= MAX_NOTIFICATION_ID:
        raise ValueError(f"notification id {notification_id} is outside the delivery key (1..{MAX_NOTIFICATION_ID})")
    if not 0 < recipient_id <= MAX_RECIPIENT_ID:
        raise ValueError(f"recipient id {recipient_id} is outside the delivery key (1..{MAX_RECIPIENT_ID})")


class NotificationStatus(models.TextChoices):
    ACCEPTED = "accepted"
    DISPATCHING = "dispatching"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"


class Source(models.TextChoices):
    PYTHON = "python"
    SIGNAL = "signal"
    API = "api"
    COMMAND = "command"
    CAMPAIGN = "campaign"
    KAFKA = "kafka"


class Notification(models.Model):
    """One request to notify an audience; counts are kept by the pipeline, not COUNT(*)."""

    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Keys are unique per scope (an API key, a source, or the internal campaign namespace) while they are
    # held: an expired key is released (released_at set) by the next request that brings it.
    idempotency_scope = models.CharField(max_length=64, blank=True, default="")
    idempotency_fingerprint = models.CharField(max_length=64, blank=True, default="",
                                               help_text="SHA-256 of the request the key was first used for.")
    idempotency_expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: held for ever.")
    idempotency_released_at = models.DateTimeField(null=True, blank=True)
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event_source = models.ForeignKey("EventSource", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", help_text="The service whose Kafka event asked for it.")
    category = models.ForeignKey(Category, on_delete=models.PROTECT)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices))
    audience = models.JSONField(help_text='{"topic": slug} | {"recipients": [ids]} | {"segment": id} | {"all": true}')
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.PROTECT)
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PYTHON)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.ACCEPTED)
    targeted = models.BigIntegerField(null=True, blank=True, help_text="Known once the audience is streamed.")
    sent = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The Redis epoch (key prefix and token, see epoch.py) its batches were dispatched under: when Redis
    # has lost its data since, its claims and counters are gone and PostgreSQL is asked instead.
    dispatch_epoch = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["idempotency_scope", "idempotency_key"], name="notification_idempotency_held_uniq",
            condition=Q(idempotency_key__isnull=False, idempotency_released_at__isnull=True))]

    def __str__(self) -> str:
        return f"#{self.pk} {self.category_id} {self.status}"


class DeliveryStatus(models.IntegerChoices):
    SENT = 1
    FAILED = 2
    SKIPPED = 3
    DEAD_LETTERED = 4


class Delivery(models.Model):
    """Per-recipient, per-channel state of one notification: the record of what was sent.

    The primary key packs (notification, channel, recipient) into one bigint, so there is one
    index to maintain per row, inserts for a batch append to the right of the B-tree, and a
    redelivered batch collides on the key instead of sending twice (ON CONFLICT DO NOTHING).
    """

    id = models.BigIntegerField(primary_key=True)
    notification = models.ForeignKey(Notification, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False)
    recipient = models.ForeignKey(Recipient, on_delete=models.DO_NOTHING, db_constraint=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.PositiveSmallIntegerField(choices=DeliveryStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "deliveries"
        # Receipts (apps/receipts) find their delivery by provider message id. Only the channels that send
        # receipts are indexed: a push fan-out's rows pay nothing for it.
        indexes = [models.Index(fields=["provider_message_id"], name="delivery_message_id_idx",
                                condition=Q(channel__in=["email", "sms"]))]

    @staticmethod
    def key(notification_id: int, channel: str, recipient_id: int) -> int:
        """Raises ValueError for an id the layout cannot hold, rather than wrap onto another row."""
        check_key_range(notification_id, recipient_id)
        return (notification_id << NOTIFICATION_SHIFT) | (CHANNEL_CODES[channel] << RECIPIENT_BITS) | recipient_id

    @staticmethod
    def key_range(notification_id: int) -> tuple[int, int]:
        check_key_range(notification_id)
        return notification_id << NOTIFICATION_SHIFT, ((notification_id + 1) << NOTIFICATION_SHIFT) - 1

    @classmethod
    def of_notification(cls, notification_id: int) -> models.QuerySet:
        return cls.objects.filter(id__range=cls.key_range(notification_id))

    def __str__(self) -> str:
        return f"{self.notification_id}/{self.channel}/{self.recipient_id}: {self.get_status_display()}"


class DeadLetter(models.Model):
    """A message or recipients that could not be processed, with the reason.

    A rejected Kafka message keeps where it came from and its payload (the first 64 KB; base64 when it
    is not NUL-free UTF-8), so an operator can inspect it, fix it and replay it. Nothing is logged of it.
    """

    class Encoding(models.TextChoices):
        TEXT = "text"
        BASE64 = "base64"

    topic = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)
    reason_kind = models.CharField(max_length=32, blank=True, db_index=True)
    notification_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    channel = models.CharField(max_length=16, blank=True)
    recipient_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)
    headers = models.JSONField(default=list, blank=True, help_text="[[name, value, text|base64], ...]")
    payload = models.TextField(blank=True, help_text="The message as received (edit it, then replay).")
    payload_encoding = models.CharField(max_length=8, choices=Encoding.choices, default=Encoding.TEXT)
    payload_size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("replay_deadletter", "Can replay dead letters")]

    def __str__(self) -> str:
        return f"{self.topic}: {self.reason[:60]}"


class ApiScope(models.TextChoices):
    SEND = "send", "send notifications"
    READ_STATUS = "read_status", "read the status of its notifications"
    MINT_USER_TOKENS = "mint_user_tokens", "mint end-user tokens"
    READ_DELIVERIES = "read_deliveries", "read a recipient's deliveries"
    MANAGE_RECIPIENTS = "manage_recipients", "create and update recipients, and the topics they follow"
    MANAGE_DEVICES = "manage_devices", "register and unregister recipients' device tokens"
    ERASE_RECIPIENTS = "erase_recipients", "erase recipients (GDPR)"
    MANAGE_CALLBACKS = "manage_callbacks", "register the status callback endpoints of its notifications"
    READ_SUPPRESSIONS = "read_suppressions", "read the suppression list (bounced, complained, opted-out addresses)"
    MANAGE_ATTACHMENTS = "manage_attachments", "upload the email attachments of its notifications"


AUDIENCE_KINDS = ("topic", "recipients", "segment", "all", "campaign")


class SendLimits(models.Model):
    """What a sender (an API key, an event source) may send: checked by allow_lists.check_allowed."""

    allowed_categories = models.ManyToManyField(Category, blank=True, related_name="+",
                                                help_text="Empty: any category.")
    allowed_audience_kinds = ArrayField(models.CharField(max_length=16, choices=[(k, k) for k in AUDIENCE_KINDS]),
                                        default=list, blank=True, help_text="Empty: any kind of audience.")
    max_audience = models.PositiveBigIntegerField(null=True, blank=True,
                                                  help_text="Largest audience one request may target; empty: no limit.")

    class Meta:
        abstract = True


class ApiKey(SendLimits):
    """A token for the HTTP API, with what it may do. Only its SHA-256 is stored."""

    name = models.CharField(max_length=200, unique=True)
    owner = models.CharField(max_length=200, blank=True, help_text="The team or person responsible for this key.")
    token_sha256 = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    scopes = ArrayField(models.CharField(max_length=32, choices=ApiScope.choices), default=list, blank=True)
    rate_per_minute = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="Requests a minute; empty: NOTIFY_API_RATE_PER_MINUTE.")
    created_at = models.DateTimeField(auto_now_add=True)

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def __str__(self) -> str:
        return self.name


PLATFORM_SOURCE = "platform"  # the platform's own events on notify.events, signed with the bus key


def check_source_name(name: str) -> None:
    if name == PLATFORM_SOURCE:
        raise ValidationError(f"{PLATFORM_SOURCE!r} is the platform's own source")


class EventSource(SendLimits):
    """A service that publishes raw events to notify.events, named by the event's "source" field."""

    name = models.SlugField(max_length=64, unique=True, validators=[check_source_name],
                            help_text='The value of "source" in its events.')
    owner = models.CharField(max_length=200, blank=True, help_text="The team or person responsible for it.")
    is_active = models.BooleanField(default=True, help_text="Events of an inactive source are dead-lettered.")
    signing_key = models.CharField(
        max_length=128, blank=True,
        help_text="When set, each event must carry a 'signature' header: the hex HMAC-SHA256 of its body with "
                  "this key; unsigned or forged events naming this source are dead-lettered.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Erasure(models.Model):
    """That a recipient was erased (apps/delivery/erasure.py): who asked, when, what went. It names nobody:
    the external id is kept only as its SHA-256 (to answer "was this person erased?")."""

    recipient_id = models.BigIntegerField()
    external_id_sha256 = models.CharField(max_length=64, db_index=True)
    requested_by = models.CharField(max_length=200)
    removed = models.JSONField(default=dict, help_text="Rows deleted, by kind.")
    deliveries_anonymised = models.PositiveIntegerField(default=0)
    erased_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"recipient {self.recipient_id} erased {self.erased_at:%Y-%m-%d %H:%M}"
