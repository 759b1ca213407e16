"""Which transport serves which channel (and, for push, which platform), from settings.

One instance per process, reused. A channel without credentials raises NotConfigured naming the
settings it needs; the sender records its recipients as failed with that reason, never skipped.
With FAKE_PROVIDER_ROUTE_ALL_PUSH (benchmarks), push devices of every platform go to the fake
provider, with their real tokens: the bytes read, held and sent are those of a real audience;
BENCH_ROUTE_ALL_PUSH_TO=fcm|apns sends them all through that platform's real adapter instead
(`bench_fanout --provider X`, against that protocol's local server). Neither is for production.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string

from apps.core import channels

from .base import NotConfigured, Transport

_transports: dict[tuple[str, str], Transport] = {}


def transport_for(channel: str, platform: str = "") -> Transport:
    if channel == "push" and (settings.BENCH_ROUTE_ALL_PUSH_TO or settings.FAKE_PROVIDER_ROUTE_ALL_PUSH):
        platform = settings.BENCH_ROUTE_ALL_PUSH_TO or "fake"
    if (channel, platform) not in _transports:
        builder = BUILDERS.get((channel, platform)) or _spec_builder(channel)
        if builder is None:
            raise NotConfigured(f"no provider for channel {channel!r}" + (f" ({platform})" if platform else ""))
        _transports[(channel, platform)] = builder()
    return _transports[(channel, platform)]


def _spec_builder(channel: str) -> Callable[[], Transport] | None:
    """A channel whose spec names its own transport (NOTIFY_EXTRA_CHANNELS)."""
    spec = channels.SPECS.get(channel)
    return import_string(spec.transport) if spec and spec.transport else None


def _require(channel: str, *names: str) -> None:
    missing = [name for name in names if not getattr(settings, name)]
    if missing:
        raise NotConfigured(f"{channel} is not configured: set {', '.join(missing)}")


def _fake_push() -> Transport:
    from .fake import FakePushTransport

    _require("push (fake)", "FAKE_PROVIDER_URL")
    return FakePushTransport(settings.FAKE_PROVIDER_URL, timeout=settings.PROVIDER_TIMEOUT_SECONDS,
                             rate_per_s=settings.FAKE_PUSH_RATE_PER_S)


def _fcm() -> Transport:
    from .fcm import FcmTransport

    _require("push (FCM)", "FCM_CREDENTIALS_FILE")
    return FcmTransport(settings.FCM_CREDENTIALS_FILE, settings.FCM_ENDPOINT, settings.FCM_PROJECT_ID,
                        timeout=settings.PROVIDER_TIMEOUT_SECONDS, rate_per_s=settings.FCM_RATE_PER_S)


def _apns() -> Transport:
    from .apns import ApnsTransport

    _require("push (APNs)", "APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC")
    return ApnsTransport(settings.APNS_KEY_FILE, settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_TOPIC,
                         settings.APNS_ENDPOINT, settings.APNS_CA_FILE, timeout=settings.PROVIDER_TIMEOUT_SECONDS,
                         rate_per_s=settings.APNS_RATE_PER_S)


def _webpush() -> Transport:
    from .webpush import WebPushTransport

    _require("push (Web Push)", "WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT")
    return WebPushTransport(settings.WEBPUSH_VAPID_PRIVATE_KEY, settings.WEBPUSH_VAPID_SUBJECT,
                            timeout=settings.PROVIDER_TIMEOUT_SECONDS)


def _email() -> Transport:
    from .email import EmailTransport

    if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        _require("email", "EMAIL_HOST")
    return EmailTransport(settings.DEFAULT_FROM_EMAIL, settings.EMAIL_BACKEND, rate_per_s=settings.EMAIL_RATE_PER_S)


def _sms() -> Transport:
    from .sms import TwilioSmsTransport

    _require("sms (Twilio)", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
    return TwilioSmsTransport(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER,
                              settings.TWILIO_API_BASE, timeout=settings.PROVIDER_TIMEOUT_SECONDS,
                              rate_per_s=settings.TWILIO_RATE_PER_S,
                              status_callback=f"{settings.PUBLIC_BASE_URL}/receipts/twilio/status"
                              if settings.TWILIO_STATUS_CALLBACKS else "")


def _webhook() -> Transport:
    from .webhook import WebhookTransport

    return WebhookTransport(timeout=settings.PROVIDER_TIMEOUT_SECONDS)


BUILDERS: dict[tuple[str, str], Callable[[], Transport]] = {
    ("push", "fake"): _fake_push, ("push", "fcm"): _fcm, ("push", "apns"): _apns, ("push", "webpush"): _webpush,
    ("email", ""): _email, ("sms", ""): _sms, ("webhook", ""): _webhook,
}


def register(channel: str, platform: str, builder: Callable[[], Transport]) -> None:
    """Add a transport that lives outside this app (the inbox's in-app transport registers itself)."""
    BUILDERS[(channel, platform)] = builder


def reset() -> None:
    for transport in _transports.values():
        transport.close()
    _transports.clear()
