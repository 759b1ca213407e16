"""GET /api/suppressions (scope read_suppressions): the suppression list, newest first, filtered by channel,
address, reason and whether still active; keyset pages by id (`before`)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from apps.core.channels import Channel
from apps.core.json_checks import BIGINT_MAX
from apps.delivery.models import ApiScope
from apps.providers.receipts import SuppressionReason
from apps.receipts.models import Suppression

from .auth import scoped
from .schemas import AUTH_ERRORS, ErrorOut

router = Router(tags=["suppressions"])


class SuppressionQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    channel: Channel | None = None
    address: str | None = Field(None, min_length=1, max_length=512, description="Exactly this address.")
    reason: SuppressionReason | None = None
    active: bool | None = Field(True, description="true (default): in force; false: lifted; omit for both.")
    before: int | None = Field(None, ge=1, le=BIGINT_MAX, description="The `next_before` of the previous page.")
    limit: int = Field(100, ge=1, le=1000)


class SuppressionOut(Schema):
    id: int
    channel: str
    address: str
    recipient_id: int | None
    reason: str
    source: str
    detail: str
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str


class SuppressionPage(Schema):
    items: list[SuppressionOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last one.")


@router.get("/suppressions", auth=scoped(ApiScope.READ_SUPPRESSIONS), summary="Query the suppression list",
            response={200: SuppressionPage, **AUTH_ERRORS, 400: ErrorOut})
def list_suppressions(request: HttpRequest, filters: Query[SuppressionQuery]) -> dict:
    rows = Suppression.objects.order_by("-id")
    if filters.channel is not None:
        rows = rows.filter(channel=filters.channel)
    if filters.address is not None:
        rows = rows.filter(address=filters.address)
    if filters.reason is not None:
        rows = rows.filter(reason=filters.reason)
    if filters.active is not None:
        rows = rows.filter(lifted_at__isnull=filters.active)
    if filters.before is not None:
        rows = rows.filter(id__lt=filters.before)
    page = list(rows[:filters.limit + 1])
    more = len(page) > filters.limit
    page = page[:filters.limit]
    return {"items": page, "next_before": page[-1].pk if more else None}
