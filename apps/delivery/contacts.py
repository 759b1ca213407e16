"""Load a batch's contact points in one query per batch, per channel."""

from __future__ import annotations

from itertools import repeat

from django.db import connection

from apps.core.channels import SPECS
from apps.core.pgarray import int_array
from apps.providers.base import Target

# Every query gives Target's six fields in order, so rows become Targets without a Python call each: the
# channel's own (its spec), or, for a retry of some push devices, those devices.
_DEVICES = "SELECT recipient_id, token, platform, NULL, id, '' FROM audience_device WHERE id = ANY(%s::bigint[])" \
           " AND is_active ORDER BY recipient_id, id"
_QUERIES = {name: spec.contacts_sql for name, spec in SPECS.items()}
NO_CONTACT_REASON = {name: spec.no_contact_reason for name, spec in SPECS.items()}


def load_targets(channel: str, recipient_ids: list[int], device_ids: list[int] | None = None) -> list[Target]:
    """Targets for the recipients that have a contact point on this channel (a user may have several);
    with `device_ids` (push), only those devices."""
    query = _QUERIES.get(channel)
    if query is None:
        return []
    with connection.cursor() as cursor:
        if device_ids:
            cursor.execute(_DEVICES, [int_array(device_ids)])
        else:
            cursor.execute(query, [int_array(recipient_ids)])
        return list(map(tuple.__new__, repeat(Target), cursor.fetchall()))


def deactivate_tokens(tokens: list[str], reason: str) -> None:
    if tokens:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audience_device SET is_active = false, deactivated_reason = %s"
                           " WHERE token = ANY(%s)", [reason[:200], tokens])


def load_profiles(recipient_ids: list[int]) -> dict[int, dict]:
    """What a personalised template may use of each recipient, in one query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, external_id, locale FROM audience_recipient WHERE id = ANY(%s::bigint[])",
                       [int_array(recipient_ids)])
        return {row[0]: {"name": row[1], "external_id": row[2], "locale": row[3]} for row in cursor.fetchall()}
