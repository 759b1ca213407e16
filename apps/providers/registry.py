"""Which transport serves which channel, from settings. One instance per process, reused."""

from __future__ import annotations

from django.conf import settings

from .base import NotConfigured, Transport

_transports: dict[str, Transport] = {}


def transport_for(channel: str) -> Transport:
    if channel not in _transports:
        _transports[channel] = _build(channel)
    return _transports[channel]


def _build(channel: str) -> Transport:
    if channel == "push" and settings.FAKE_PROVIDER_URL:
        from .fake import FakePushTransport

        return FakePushTransport(settings.FAKE_PROVIDER_URL, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    raise NotConfigured(f"no provider configured for channel {channel!r}")


def reset() -> None:
    for transport in _transports.values():
        transport.close()
    _transports.clear()
