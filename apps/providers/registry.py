"""Which transport serves which channel (and, for push, which platform), from settings.

One instance per process, reused. A channel without credentials raises NotConfigured, which the
sender records as a permanent failure naming the missing settings: never a silent skip.
"""

from __future__ import annotations

from django.conf import settings

from .base import NotConfigured, Transport

_transports: dict[tuple[str, str], Transport] = {}


def transport_for(channel: str, platform: str = "") -> Transport:
    if (channel, platform) not in _transports:
        _transports[(channel, platform)] = _build(channel, platform)
    return _transports[(channel, platform)]


def _build(channel: str, platform: str) -> Transport:
    if channel == "push" and platform == "fake" and settings.FAKE_PROVIDER_URL:
        from .fake import FakePushTransport

        return FakePushTransport(settings.FAKE_PROVIDER_URL, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    raise NotConfigured(f"no provider configured for channel {channel!r}" + (f" ({platform})" if platform else ""))


def reset() -> None:
    for transport in _transports.values():
        transport.close()
    _transports.clear()
