"""APNs: HTTP/2 over TLS (hypercorn), POST /3/device/<token> with a provider token (JWT, ES256).

The provider token is verified with the key's public half, its key id and team id; apns-topic must
be the app's. A device token that starts with "bad", "gone", "busy" or "malformed" gets Apple's
answer for that case (the adapter tests); any other is accepted, unless the quota is spent (429
TooManyRequests). The device token is everything after /3/device/, so any token is counted whole.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import json
from pathlib import Path

import jwt

from .common import Counts, Received, ServerThread, free_port

DEVICE_PATH = "/3/device/"


def self_signed_cert(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1, and its key; the certificate doubles as the client's CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def apns_asgi_app(public_key_pem: str, key_id: str, team_id: str, topic: str, received: Received | None = None,
                  counts: Counts | None = None):  # noqa: ANN201
    ids = itertools.count(1)
    counts = counts or Counts()
    verified: set[str] = set()  # provider tokens already checked: Apple, too, verifies one once per connection

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        token = path[len(DEVICE_PATH):] if path.startswith(DEVICE_PATH) else path.rsplit("/", 1)[-1]

        async def answer(status: int, reason: str | None = None, extra: dict | None = None) -> None:
            payload = json.dumps({"reason": reason}).encode() if reason else b""
            response_headers = [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": payload})

        bearer = headers.get("authorization", "").removeprefix("bearer ")
        if bearer not in verified:
            try:
                header = jwt.get_unverified_header(bearer)
                claims = jwt.decode(bearer, public_key_pem, algorithms=["ES256"])
            except jwt.PyJWTError:
                return await answer(403, "InvalidProviderToken")
            if header.get("kid") != key_id or claims.get("iss") != team_id:
                return await answer(403, "InvalidProviderToken")
            verified.add(bearer)
        if headers.get("apns-topic") != topic:
            return await answer(400, "TopicDisallowed")
        if not counts.request(len(body)):
            return await answer(429, "TooManyRequests")
        if received is not None:
            received.requests.append({"token": token, "http_version": scope["http_version"],
                                      "payload": json.loads(body), "push_type": headers.get("apns-push-type")})
        if token.startswith("bad"):
            return await answer(400, "BadDeviceToken")
        if token.startswith("gone"):
            return await answer(410, "Unregistered")
        if token.startswith("busy"):
            return await answer(429, "TooManyRequests")
        if token.startswith("malformed"):
            return await answer(400, "PayloadTooLarge")
        counts.accepted(token)
        await counts.hold()
        await answer(200, extra={"apns-id": f"00000000-0000-0000-0000-{next(ids):012d}"})

    return app


def http2_tls_config(port: int, cert_file: str, key_file: str):  # noqa: ANN201
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = cert_file, key_file
    config.alpn_protocols = ["h2"]
    config.accesslog = config.errorlog = None
    return config


async def start_http2_tls(app, port: int, cert_file: str, key_file: str,  # noqa: ANN001, ANN201
                          stop_event: asyncio.Event):
    """Serve app until stop_event; returns once it listens, with the coroutine function that awaits its end."""
    from hypercorn.asyncio import serve

    task = asyncio.ensure_future(serve(app, http2_tls_config(port, cert_file, key_file),
                                       shutdown_trigger=stop_event.wait))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)

    async def cleanup() -> None:
        await task

    return cleanup


def serve_http2_tls(app, cert_file: str, key_file: str) -> tuple[ServerThread, str]:  # noqa: ANN001
    port = free_port()

    async def start(stop_event: asyncio.Event):  # noqa: ANN202
        return await start_http2_tls(app, port, cert_file, key_file, stop_event)

    return ServerThread(start).start(), f"https://127.0.0.1:{port}"
