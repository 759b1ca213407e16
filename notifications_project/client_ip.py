"""The address a request came from, for the admin login lockout (django-axes' AXES_CLIENT_IP_CALLABLE).

Behind a reverse proxy every request arrives from the proxy, so the client is in X-Forwarded-For. That
header is believed only when the connection came from a trusted proxy (FORWARDED_ALLOW_IPS, the same
variable and default as gunicorn's, so the web server and the lockout agree): the header is read from the
right, skipping trusted proxies, and the first other address is the client. Anyone else could write any
address there, so from an untrusted peer the peer's own address counts.
"""

from __future__ import annotations

import ipaddress
import os

from .env import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALL = "*"


def trusted_proxies(name: str = "FORWARDED_ALLOW_IPS", default: str = "127.0.0.1,::1") -> list[Network] | str:
    """The trusted proxies' addresses and networks from env ("*": every peer; empty: none)."""
    raw = os.environ.get(name, default).strip()
    if raw == ALL:
        return ALL
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(name, "IP addresses or networks separated by commas, or *", item) from None
    return networks


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: list[Network] | str) -> bool:
    return proxies == ALL or any(address in network for network in proxies)


def client_ip(request) -> str | None:  # noqa: ANN001 (an HttpRequest, or a request-like object of axes)
    from django.conf import settings

    proxies = settings.TRUSTED_PROXIES
    peer = request.META.get("REMOTE_ADDR")
    address = _address(peer or "")
    if address is None or not _trusted(address, proxies):
        return peer
    hops = list(map(_address, request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")))
    for hop in reversed(hops):
        if hop is None:  # a malformed entry: nothing to its left can be trusted
            break
        if not _trusted(hop, proxies):
            return str(hop)
        address = hop
    return str(address)
