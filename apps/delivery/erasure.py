"""Erasing a recipient (GDPR, the right to erasure).

Deleted: the recipient row and, with it, their devices, follows, preferences, quiet hours, inbox messages
and campaign list entries. Kept: their delivery rows, so a notification's counts stay true, but cleared of
the provider's message id and reason (a provider id can be traced back to an address at the provider;
a reason can quote one). The row's recipient id then names nobody: ids are never reused. An Erasure row
records that it happened, who asked and what went; the external id only as its SHA-256, so the caller can
prove a given person was erased without the record naming them.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction

from apps.audience.models import Recipient

from .models import Delivery, Erasure

log = logging.getLogger(__name__)


def erase(recipient: Recipient, requested_by: str) -> dict:
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
        recipient_id = recipient.pk  # delete() clears it
        anonymised = (Delivery.objects.filter(recipient_id=recipient_id)
                      .exclude(provider_message_id="", reason="").update(provider_message_id="", reason=""))
        _total, per_model = recipient.delete()
        removed = {label.rsplit(".", 1)[-1].lower(): count for label, count in per_model.items()
                   if label != "audience.Recipient" and count}
        Erasure.objects.create(recipient_id=recipient_id, requested_by=requested_by[:200],
                               external_id_sha256=hashlib.sha256(recipient.external_id.encode()).hexdigest(),
                               removed=removed, deliveries_anonymised=anonymised)
    log.info("recipient %s erased at the request of %s", recipient_id, requested_by)
    return {"removed": removed, "deliveries_anonymised": anonymised}
