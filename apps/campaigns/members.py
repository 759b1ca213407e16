"""An uploaded audience list: a CSV of user ids (external ids), one per line, in the first column."""

from __future__ import annotations

import csv
import re

from django.db import transaction

from apps.audience.models import Recipient

from .models import Campaign, CampaignMember

HEADER_NAMES = ("user_id", "id", "external_id")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MemberListError(ValueError):
    """The upload is not a text CSV: the message says why and where."""


def decode(data: bytes) -> str:
    """The upload as text, or MemberListError naming the first line that is not text."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        raise MemberListError(f"This file is not text: line {line} has a NUL byte. Upload a CSV of user ids.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise MemberListError(f"This file is not UTF-8 text: line {line} has the byte 0x{data[exc.start]:02x}. "
                              "Save it as a UTF-8 CSV.") from None
    control = _CONTROL.search(text)
    if control:
        line = text[:control.start()].count("\n") + 1
        raise MemberListError(f"This file is not text: line {line} has the control character "
                              f"U+{ord(control.group()):04X}. Upload a CSV of user ids.")
    return text


def parse_member_csv(data: bytes) -> tuple[list[int], list[tuple[int, str]]]:
    """Recipient ids for the user ids in the first column, and the rejected lines as (line number, why).

    Each line is parsed on its own, so an unterminated quote costs its one line, not every line after
    it, and line numbers are the file's own. Raises MemberListError for a file that is not text.
    """
    wanted: dict[str, int] = {}
    rejected: list[tuple[int, str]] = []
    for number, line in enumerate(_LINE_BREAK.split(decode(data)), start=1):
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            why = "unterminated quote" if "unexpected end of data" in str(exc) else str(exc)
            rejected.append((number, f"{line[:40]!r} ({why})"))
            continue
        value = row[0].strip() if row else ""
        if not value:
            rejected.append((number, f"{line[:40]!r} (no user id in the first column)"))
        elif not (number == 1 and value.lower() in HEADER_NAMES):
            wanted.setdefault(value, number)
    found: dict[str, int] = {}
    names = list(wanted)
    for start in range(0, len(names), 10_000):
        found.update(Recipient.objects.filter(external_id__in=names[start:start + 10_000])
                     .values_list("external_id", "pk"))
    rejected += [(line, repr(value[:40])) for value, line in wanted.items() if value not in found]
    return sorted(set(found.values())), sorted(rejected)


def replace_members(campaign: Campaign, recipient_ids: list[int]) -> None:
    with transaction.atomic():
        CampaignMember.objects.filter(campaign=campaign).delete()
        CampaignMember.objects.bulk_create([CampaignMember(campaign=campaign, recipient_id=r) for r in recipient_ids],
                                           batch_size=10_000)


def register_member_lists() -> None:
    """Make {"campaign": id} an audience the pipeline can check, count and stream: the campaign's uploaded list."""
    from apps.delivery import service as delivery

    delivery.register_audience_kind(delivery.AudienceKind(
        name="campaign",
        exists=lambda pk: Campaign.objects.filter(pk=pk).exists(),
        rows=lambda pk: CampaignMember.objects.filter(campaign_id=pk),
        ids_sql="SELECT recipient_id AS id FROM campaigns_campaignmember WHERE campaign_id = %(kind_value)s",
        page_sql="SELECT recipient_id FROM campaigns_campaignmember WHERE campaign_id = %(kind_value)s"
                 " AND recipient_id > %(after)s ORDER BY campaign_id, recipient_id LIMIT %(limit)s",
    ))
