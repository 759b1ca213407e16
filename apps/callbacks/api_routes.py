"""Callback endpoints of the calling API key (scope manage_callbacks):

POST   /api/callbacks/endpoints        register one; the answer holds its signing secret, shown this once
GET    /api/callbacks/endpoints        the key's endpoints (never their secrets)
DELETE /api/callbacks/endpoints/{id}   stop sending to it (its delivery log is kept)
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status
from pydantic import ConfigDict, field_validator

from apps.api.auth import scoped
from apps.api.errors import ApiError
from apps.api.schemas import AUTH_ERRORS, BODY_ERRORS, ErrorOut
from apps.delivery.models import ApiScope
from apps.providers.outbound import check_stored_url
from apps.providers.standard_webhooks import new_secret

from .models import CallbackEndpoint, EventType

router = Router(tags=["callbacks"])
OPTIONAL_EVENTS = (EventType.DELIVERY_FAILED.value, EventType.DELIVERY_DEAD_LETTERED.value)


class EndpointIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(min_length=1, max_length=2000, description="https, resolving only to public addresses.")
    event_types: list[str] = Field(default_factory=list, max_length=2, description=(
        "Batched outcome events to receive besides notification.completed (which every endpoint receives): "
        "delivery.failed, delivery.dead_lettered."))
    description: str = Field("", max_length=200)

    @field_validator("url")
    @classmethod
    def _public_https(cls, value: str) -> str:
        problem = check_stored_url(value)
        if problem:
            raise ValueError(f"callback URL refused: {problem}")
        return value

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(OPTIONAL_EVENTS))
        if unknown:
            raise ValueError(f"unknown event type {unknown[0]!r} (one of {', '.join(OPTIONAL_EVENTS)})")
        return sorted(set(value))


class EndpointOut(Schema):
    id: int
    url: str
    event_types: list[str]
    description: str
    is_active: bool
    created_at: datetime


class CreatedEndpointOut(EndpointOut):
    secret: str = Field(description="The Standard Webhooks signing secret (whsec_...): shown only in this answer.")


def _out(endpoint: CallbackEndpoint, **extra: object) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "event_types": [EventType.NOTIFICATION_COMPLETED.value,
                                                                    *endpoint.event_types],
            "description": endpoint.description, "is_active": endpoint.is_active,
            "created_at": endpoint.created_at, **extra}


@router.post("/endpoints", auth=scoped(ApiScope.MANAGE_CALLBACKS), summary="Register a callback endpoint",
             response={201: CreatedEndpointOut, **AUTH_ERRORS, **BODY_ERRORS})
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Status:
    endpoint = CallbackEndpoint.objects.create(api_key=request.auth, url=payload.url, secret=new_secret(),
                                               event_types=payload.event_types, description=payload.description)
    return Status(201, _out(endpoint, secret=endpoint.secret))


@router.get("/endpoints", auth=scoped(ApiScope.MANAGE_CALLBACKS), summary="The API key's callback endpoints",
            response={200: list[EndpointOut], **AUTH_ERRORS})
def list_endpoints(request: HttpRequest) -> list[dict]:
    return [_out(e) for e in CallbackEndpoint.objects.filter(api_key=request.auth).order_by("pk")]


@router.delete("/endpoints/{endpoint_id}", auth=scoped(ApiScope.MANAGE_CALLBACKS), summary="Stop an endpoint",
               response={204: None, **AUTH_ERRORS, 404: ErrorOut})
def delete_endpoint(request: HttpRequest, endpoint_id: int = Path(..., ge=1, le=2**63 - 1)) -> Status:
    stopped = CallbackEndpoint.objects.filter(api_key=request.auth, pk=endpoint_id, is_active=True).update(
        is_active=False)
    if not stopped:
        raise ApiError(404, f"no active callback endpoint {endpoint_id} of this API key", "endpoint_id")
    return Status(204, None)
