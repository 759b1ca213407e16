"""A recipient's push devices and the topics they follow (scope manage_devices for devices,
manage_recipients for topics).

PUT    /api/recipients/{external_id}/devices             register a token (moves it from another recipient)
POST   /api/recipients/{external_id}/devices/unregister  stop sending to a token
GET    /api/recipients/{external_id}/devices
PUT    /api/recipients/{external_id}/topics/{slug}       follow
DELETE /api/recipients/{external_id}/topics/{slug}       unfollow
GET    /api/recipients/{external_id}/topics
"""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from apps.audience import devices
from apps.audience.models import Device, Platform, Topic
from apps.delivery.models import ApiScope

from .auth import scoped
from .errors import ApiError
from .paths import EXTERNAL_ID
from .recipients import recipient_or_404
from .schemas import AUTH_ERRORS, BODY_ERRORS, ErrorOut

router = Router(tags=["devices and topics"])
DEVICES = f"/recipients/{EXTERNAL_ID}/devices"
TOPIC = f"/recipients/{EXTERNAL_ID}/topics/{{external_id:slug}}"


PlatformName = Literal[tuple(Platform.values)]


class DeviceIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    platform: PlatformName = Field(description="Which push service the token is for.")
    token: str = Field(min_length=1, max_length=512, description="The push token (Web Push: the subscription JSON).")
    app: str = Field("", max_length=100, description="The client app it belongs to, e.g. its bundle id.")


class TokenIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    token: str = Field(min_length=1, max_length=512)


class DeviceOut(Schema):
    id: int
    platform: str
    token: str
    app: str
    is_active: bool
    deactivated_reason: str


class RegisteredOut(DeviceOut):
    outcome: str = Field(description="created, updated (already this recipient's) or moved (from another recipient)")


class DevicesOut(Schema):
    devices: list[DeviceOut]


class FollowOut(Schema):
    topic: str
    following: bool
    changed: bool


class TopicsOut(Schema):
    topics: list[str]


def _device(device: Device) -> dict:
    return {"id": device.pk, "platform": device.platform, "token": device.token, "app": device.app,
            "is_active": device.is_active, "deactivated_reason": device.deactivated_reason}


@router.put(DEVICES, auth=scoped(ApiScope.MANAGE_DEVICES), summary="Register a device token",
            response={200: RegisteredOut, 201: RegisteredOut, **AUTH_ERRORS, **BODY_ERRORS, 404: ErrorOut})
def register_device(request: HttpRequest, external_id: str, payload: DeviceIn) -> Status:
    """201 for a new token; 200 when it was this recipient's already or moved here from another recipient
    (a token is never held twice). Registering an unregistered or invalidated token makes it active again."""
    device, outcome = devices.register(recipient_or_404(external_id), payload.platform, payload.token, payload.app)
    return Status(201 if outcome == "created" else 200, {**_device(device), "outcome": outcome})


@router.post(f"{DEVICES}/unregister", auth=scoped(ApiScope.MANAGE_DEVICES), summary="Unregister a device token",
             response={200: DeviceOut, **AUTH_ERRORS, **BODY_ERRORS, 404: ErrorOut})
def unregister_device(request: HttpRequest, external_id: str, payload: TokenIn) -> dict:
    recipient = recipient_or_404(external_id)
    if not devices.unregister(recipient, payload.token):
        raise ApiError(404, "this recipient has no device with that token", "token")
    return _device(Device.objects.get(token=payload.token))


@router.get(DEVICES, auth=scoped(ApiScope.MANAGE_DEVICES), summary="A recipient's devices",
            response={200: DevicesOut, **AUTH_ERRORS, 404: ErrorOut})
def list_devices(request: HttpRequest, external_id: str) -> dict:
    recipient = recipient_or_404(external_id)
    return {"devices": [_device(d) for d in recipient.devices.order_by("id")[:1000]]}


def _topic(slug: str) -> Topic:
    topic = Topic.objects.filter(slug=slug).first()
    if topic is None:
        raise ApiError(404, f"no topic {slug!r}", "slug")
    return topic


@router.put(TOPIC, auth=scoped(ApiScope.MANAGE_RECIPIENTS), summary="Follow a topic",
            response={200: FollowOut, **AUTH_ERRORS, 404: ErrorOut})
def follow_topic(request: HttpRequest, external_id: str, slug: str) -> dict:
    recipient, topic = recipient_or_404(external_id), _topic(slug)
    return {"topic": topic.slug, "following": True, "changed": devices.follow(recipient, topic)}


@router.delete(TOPIC, auth=scoped(ApiScope.MANAGE_RECIPIENTS), summary="Unfollow a topic",
               response={200: FollowOut, **AUTH_ERRORS, 404: ErrorOut})
def unfollow_topic(request: HttpRequest, external_id: str, slug: str) -> dict:
    recipient, topic = recipient_or_404(external_id), _topic(slug)
    return {"topic": topic.slug, "following": False, "changed": devices.unfollow(recipient, topic)}


@router.get(f"/recipients/{EXTERNAL_ID}/topics", auth=scoped(ApiScope.MANAGE_RECIPIENTS),
            summary="The topics a recipient follows", response={200: TopicsOut, **AUTH_ERRORS, 404: ErrorOut})
def list_topics(request: HttpRequest, external_id: str) -> dict:
    recipient = recipient_or_404(external_id)
    return {"topics": list(recipient.follows.order_by("topic__slug").values_list("topic__slug", flat=True)[:1000])}
