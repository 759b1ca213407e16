"""Delivery rows written in bulk, on the real PostgreSQL: every write is idempotent."""

import pytest
from django.db import connection

from apps.core.pgarray import text_array
from apps.delivery import records
from apps.delivery.models import Delivery, DeliveryStatus


def outcomes(*recipients: tuple[int, int, str]) -> records.Outcomes:
    batch = records.Outcomes()
    for recipient_id, status, provider_id in recipients:
        batch.add(recipient_id, status, provider_id=provider_id)
    return batch


@pytest.mark.django_db(transaction=True)
def test_a_first_write_that_meets_recorded_rows_keeps_them_and_counts_only_new_ones():
    notification_id = 424242
    sent = DeliveryStatus.SENT
    first = records.write(notification_id, "push", outcomes((1, sent, "a"), (2, sent, "b")), first_write=True)
    assert first == {"sent": 2}
    # Redis lost the batch's claim, so the batch looks new again: the fast statement fails and the
    # careful one runs instead.
    again = records.write(notification_id, "push", outcomes((2, DeliveryStatus.FAILED, "x"), (3, sent, "c")),
                          first_write=True)
    assert again == {"sent": 1}
    rows = dict(Delivery.of_notification(notification_id).values_list("recipient_id", "provider_message_id"))
    assert rows == {1: "a", 2: "b", 3: "c"}
    assert records.write(notification_id, "push", outcomes((3, sent, "c"))) == {}


@pytest.mark.parametrize("values", [[], [""], ["", ""], ["a", "b c"], ['say "hi"', "back\\slash", "{,}", "NULL"]])
def test_text_arrays_reach_postgresql_unchanged(db, values):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [text_array(values)])
        assert cursor.fetchone()[0] == values
