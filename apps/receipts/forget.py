"""When a recipient is deleted (erased, apps/delivery/erasure.py, or deleted in the admin), their
suppressions go with them (they hold the address) and their receipts keep only state and time (a
provider's words can quote the address). Their delivery rows are kept anonymised, by erasure.py."""

from __future__ import annotations

from django.db import connection

from apps.audience.models import Recipient

from .models import Suppression


def forget_recipient(sender: type, instance: Recipient, **kwargs: object) -> None:
    Suppression.objects.filter(recipient_id=instance.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE receipts_deliveryevent SET detail = '' WHERE detail <> '' AND delivery_id IN"
                       " (SELECT id FROM delivery_delivery WHERE recipient_id = %s)", [instance.pk])
