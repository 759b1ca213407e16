"""Where a webhook or Web Push request may go: an https URL whose host resolves only to public addresses.

A URL comes from a recipient's record or a browser subscription, so anyone who can write one could
point our workers at an internal service (SSRF): 127.0.0.1, the private networks, the cloud
metadata address 169.254.169.254. A URL is checked before its request (refused: a permanent failure
with the reason), and every connection's name resolution goes through GuardedResolver, so a name
that resolves to a public address at the check and a private one at the connection (DNS rebinding)
is refused too. Hosts in NOTIFY_OUTBOUND_ALLOWED_HOSTS (tests, a local receiver) may use http and any
address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from django.conf import settings


def allowed_host(host: str) -> bool:
    return host.lower().rstrip(".") in {h.lower() for h in settings.OUTBOUND_ALLOWED_HOSTS}


def non_public(address: str) -> bool:
    """Loopback, private, link-local, shared, reserved, multicast or unspecified (IPv4-mapped IPv6 too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def url_problem(url: str) -> str | None:
    """What is wrong with url as an outbound address, without resolving it (None: resolve and check)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "not a valid URL"
    if not host:
        return "not a valid URL"
    if allowed_host(host):
        return None if parts.scheme in ("https", "http") else "must be an https:// URL"
    if parts.scheme != "https":
        return "must be an https:// URL"
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return f"{host} is not a public address"
    try:
        if non_public(host):
            return f"{host} is not a public address"
    except ValueError:  # a name, not an address
        pass
    return None


def addresses_problem(host: str, addresses: list[str]) -> str | None:
    if allowed_host(host):
        return None
    bad = [a for a in addresses if non_public(a)]
    return f"{host} resolves to a non-public address ({bad[0]})" if bad else None


async def refusal(url: str) -> str | None:
    """url_problem, then every address the host resolves to (a name that does not resolve is left to the
    request, which fails as unreachable)."""
    problem = url_problem(url)
    if problem:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return None  # a literal address, already judged
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    return addresses_problem(host, [info[4][0] for info in infos])


def check_stored_url(url: str) -> str | None:
    """For validating a URL before it is saved: the same checks, resolving synchronously."""
    problem = url_problem(url)
    if problem:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None  # checked again before every request
    return addresses_problem(host, [info[4][0] for info in infos])


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to a non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        problem = addresses_problem(host, [r["host"] for r in results])
        if problem:
            raise OSError(problem)
        return results

    async def close(self) -> None:
        await self._inner.close()


class Refused(aiohttp.ClientError):
    """A request (or a redirect it followed) to an address we do not send to."""


async def _check_each_request(session, context, params) -> None:  # noqa: ANN001
    problem = url_problem(str(params.url))
    if problem:
        raise Refused(problem)


def session(timeout: float) -> aiohttp.ClientSession:
    """A client session whose connections resolve through GuardedResolver and whose every request,
    redirects included, is checked by url_problem (the connector does not resolve literal addresses)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_check_each_request)
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), trace_configs=[trace],
                                 connector=aiohttp.TCPConnector(resolver=GuardedResolver()))
