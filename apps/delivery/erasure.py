"""Erasing a recipient (GDPR, the right to erasure).

Deleted: the recipient row and, with it, their devices, follows, preferences, quiet hours, inbox messages
and campaign list entries. Kept: their delivery rows, so a notification's counts stay true, but cleared of
the provider's message id and reason (a provider id can be traced back to an address at the provider;
a reason can quote one). The row's recipient id then names nobody: ids are never reused. An Erasure row
records that it happened, who asked and what went; the external id only as its SHA-256, so the caller can
prove a given person was erased without the record naming them.

What the pipeline's side records hold of them goes too: dead letters lose their id, contact details and
the content of events meant for them alone (dead_letter_erasure.py), and unfinished batches' journals in
Redis their provider message ids (claims.forget_provider_ids). Redis first: if it is unreachable the
erasure fails whole (503, to retry) rather than half-done. A batch in flight at that moment may still
record one delivery row for them with a provider id; ids are never reused, so it names nobody. Apps above
this one scrub their own traces on the signal recipient_erased (apps/callbacks: callback messages).
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction

from apps.audience.models import Recipient

from .claims import forget_provider_ids
from .dead_letter_erasure import identifiers, scrub_dead_letters
from .models import Delivery, Erasure
from .signals import recipient_erased

log = logging.getLogger(__name__)


def erase(recipient: Recipient, requested_by: str) -> dict:
    journal_entries = forget_provider_ids(recipient.pk)
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
        recipient_id = recipient.pk  # delete() clears it
        dead_letters = scrub_dead_letters(recipient_id, identifiers(recipient))
        anonymised = (Delivery.objects.filter(recipient_id=recipient_id)
                      .exclude(provider_message_id="", reason="").update(provider_message_id="", reason=""))
        _total, per_model = recipient.delete()
        removed = {label.rsplit(".", 1)[-1].lower(): count for label, count in per_model.items()
                   if label != "audience.Recipient" and count}
        elsewhere = {kind: count for _, answer in recipient_erased.send(sender=Recipient, recipient_id=recipient_id)
                     for kind, count in (answer or {}).items()}
        Erasure.objects.create(recipient_id=recipient_id, requested_by=requested_by[:200],
                               external_id_sha256=hashlib.sha256(recipient.external_id.encode()).hexdigest(),
                               removed={**removed, **scrubbed(dead_letters, journal_entries), **elsewhere},
                               deliveries_anonymised=anonymised)
    log.info("recipient %s erased at the request of %s (%d dead letter(s) and %d journal entries scrubbed)",
             recipient_id, requested_by, dead_letters, journal_entries)
    return {"removed": removed, "deliveries_anonymised": anonymised, "dead_letters_scrubbed": dead_letters,
            "journal_entries_scrubbed": journal_entries, "scrubbed_elsewhere": elsewhere}


def scrubbed(dead_letters: int, journal_entries: int) -> dict[str, int]:
    """For the Erasure row's record of what went: the scrubbed traces, by kind, when there were any."""
    counts = {"deadletter (scrubbed)": dead_letters, "journal entry (scrubbed)": journal_entries}
    return {kind: count for kind, count in counts.items() if count}
