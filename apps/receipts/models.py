"""What providers reported after sending (DeliveryEvent) and the addresses not to send to (Suppression).

Receipts are rows of their own, not columns of delivery_delivery: a fan-out writes those rows once, in
bulk, on its hot path, and a receipt per state would rewrite each row several times over (delivered,
opened, clicked: a new row version each, dead tuples for vacuum, and a wider row for every send). An
append-only table keyed by the packed delivery id keeps the first time of each state, and a
notification's counts are a range scan over its key range, like the delivery rows' own.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.channels import Channel
from apps.providers.receipts import State, SuppressionReason


class DeliveryEvent(models.Model):
    """One state a provider reported for one delivery (delivery_delivery.id), at the first time it did."""

    delivery_id = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=[(s.value, s.value.replace("_", " ")) for s in State])
    at = models.DateTimeField()
    provider = models.CharField(max_length=32)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery_id", "state"], name="deliveryevent_once_per_state")]

    def __str__(self) -> str:
        return f"{self.delivery_id}: {self.state} at {self.at:%Y-%m-%d %H:%M:%S}"


class Suppression(models.Model):
    """An address on a channel that must not be sent to, and why. Lifting keeps the row (the audit):
    lifted_at, lifted_by and lift_note say who let the address receive again; a later bounce adds a new row.

    `recipient_id` is the recipient whose contact point it was when it was suppressed: the dispatcher
    skips by (channel, recipient_id) in its sparse exceptions query, so the fan-out pays nothing per
    recipient. A push token's suppression has none (the device is deactivated instead: the recipient's
    other devices still receive).
    """

    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=512, help_text="The email address, phone number or push token.")
    recipient_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=16, choices=[(r.value, r.value.replace("_", " ")) for r in SuppressionReason])
    source = models.CharField(max_length=32, help_text="Who reported it: the provider, the send, or an admin.")
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lift_note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["channel", "address", "recipient_id"], name="suppression_active_uniq",
            condition=Q(lifted_at__isnull=True), nulls_distinct=False)]
        indexes = [
            models.Index(fields=["channel", "recipient_id"], name="suppression_active_recipient",
                         condition=Q(lifted_at__isnull=True, recipient_id__isnull=False)),
            models.Index(fields=["address"], name="suppression_address"),
        ]

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None

    def __str__(self) -> str:
        return f"{self.channel} {self.address}: {self.reason}"
