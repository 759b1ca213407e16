"""A Web Push endpoint (a browser vendor's push service, RFC 8030): POST /push/<name>.

Every push must carry VAPID authorization (`vapid t=<JWT>, k=<key>`); its body is decrypted with
the subscription's keys (`decrypt(name, body)`, the browser's side of RFC 8291). A name that starts
with "gone", "busy" or "bad" gets the push service's answer for that case (the adapter tests).
"""

from __future__ import annotations

from collections.abc import Callable

import jwt
from aiohttp import web

from .common import Counts, Received


def webpush_app(received: Received | None, decrypt: Callable[[str, bytes], object],
                counts: Counts | None = None) -> web.Application:
    counts = counts or Counts()

    async def push(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("vapid t="):
            return web.Response(status=401, text="missing VAPID authorization")
        try:
            fields = dict(part.strip().split("=", 1) for part in authorization[6:].split(","))
            claims = jwt.decode(fields["t"], options={"verify_signature": False})
        except (ValueError, KeyError, jwt.PyJWTError):
            return web.Response(status=401, text="unreadable VAPID authorization")
        if name.startswith("gone"):
            return web.Response(status=410, text="push subscription has unsubscribed or expired.")
        if name.startswith("busy"):
            return web.Response(status=429, text="Too many requests", headers={"Retry-After": "30"})
        if name.startswith("bad"):
            return web.Response(status=413, text="Payload too large")
        body = await request.read()
        if not counts.request(len(body)):
            return web.Response(status=429, text="Too many requests", headers={"Retry-After": "1"})
        try:
            payload = decrypt(name, body)
        except Exception:  # noqa: BLE001 - any failure to decrypt is the sender's fault
            return web.Response(status=400, text="payload does not decrypt with the subscription's keys")
        if received is not None:
            received.requests.append({"name": name, "claims": claims, "vapid_k": fields.get("k"),
                                      "encoding": request.headers.get("Content-Encoding"),
                                      "ttl": request.headers.get("TTL"), "payload": payload})
        counts.accepted(name)
        await counts.hold()
        return web.Response(status=201, headers={"Location": f"/messages/{name}-{counts.requests}"})

    app = web.Application()
    app.add_routes([web.post("/push/{name}", push)])
    return app
