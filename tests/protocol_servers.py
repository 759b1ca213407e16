"""Local servers on 127.0.0.1 that speak the providers' wire protocols, for the adapter tests.

Each answers from the address it is sent to: a token, number or URL that starts with "bad", "gone",
"busy", "quota", "garbled" or "malformed" gets that provider's own answer for that case.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import threading
from dataclasses import dataclass, field

import jwt
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    requests: list = field(default_factory=list)


class ServerThread:
    """An asyncio server on its own loop and thread; start() returns once it listens."""

    def __init__(self, start_coroutine) -> None:  # noqa: ANN001
        self.start_coroutine = start_coroutine
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        cleanup = await self.start_coroutine(self.stop_event)
        self.ready.set()
        await self.stop_event.wait()
        await cleanup()

    def start(self) -> ServerThread:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("server did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def serve_aiohttp(app: web.Application) -> tuple[ServerThread, str]:
    port = free_port()

    async def start(stop_event: asyncio.Event):  # noqa: ANN202
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner.cleanup

    return ServerThread(start).start(), f"http://127.0.0.1:{port}"


# --- FCM HTTP v1 and Google's OAuth2 token endpoint -------------------------------------------------

def fcm_app(public_key_pem: str, received: Received) -> web.Application:
    ids = itertools.count(1)

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:  # a real RS256 assertion signed with the service account's key
            claims = jwt.decode(form["assertion"], public_key_pem, algorithms=["RS256"],
                                options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if "firebase.messaging" not in claims.get("scope", "") or not claims["aud"].endswith("/token"):
            return web.json_response({"error": "invalid_scope", "error_description": str(claims)}, status=400)
        return web.json_response({"access_token": "ya29.local", "expires_in": 3600, "token_type": "Bearer"})

    def fcm_error(status: int, code: str, message: str, google_status: str) -> web.Response:
        return web.json_response({"error": {"code": status, "message": message, "status": google_status, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}, status=status)

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer ya29.local":
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                             "UNAUTHENTICATED")
        message = (await request.json())["message"]
        received.requests.append(message)
        token = message["token"]
        if token.startswith("bad"):
            return fcm_error(404, "UNREGISTERED", "Requested entity was not found.", "NOT_FOUND")
        if token.startswith("malformed"):
            return fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data' (Map), \"title\"",
                             "INVALID_ARGUMENT")
        if token.startswith("busy"):
            return web.json_response({"error": {"code": 503, "message": "The service is currently unavailable.",
                                                "status": "UNAVAILABLE"}}, status=503, headers={"Retry-After": "7"})
        if token.startswith("quota"):
            return fcm_error(429, "QUOTA_EXCEEDED", "Quota exceeded for quota metric", "RESOURCE_EXHAUSTED")
        if token.startswith("garbled"):
            return web.Response(text="<html>502 Bad Gateway</html>", status=200)
        project = request.match_info["project"]
        return web.json_response({"name": f"projects/{project}/messages/{next(ids)}"})

    app = web.Application()
    app.add_routes([web.post("/token", token), web.post("/v1/projects/{project}/messages:send", send)])
    return app


# --- Twilio Messages API ----------------------------------------------------------------------------

def twilio_app(account_sid: str, auth_token: str, received: Received) -> web.Application:
    ids = itertools.count(1)
    expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()

    def twilio_error(status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "more_info":
                                  f"https://www.twilio.com/docs/errors/{code}", "status": status}, status=status)

    async def create(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected_auth:
            return twilio_error(401, 20003, "Authenticate")
        if request.match_info["sid"] != account_sid:
            return twilio_error(404, 20404, "The requested resource was not found")
        form = await request.post()
        received.requests.append(dict(form))
        to = form.get("To", "")
        if to.startswith("+1500555bad"):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to.startswith("+1500555quota"):
            return twilio_error(429, 20429, "Too Many Requests")
        if to.startswith("+1500555busy"):
            return twilio_error(503, 20500, "Service Unavailable")
        sid = f"SM{next(ids):032d}"
        return web.json_response({"sid": sid, "account_sid": account_sid, "to": to, "from": form.get("From"),
                                  "body": form.get("Body"), "status": "queued", "num_segments": "1",
                                  "direction": "outbound-api", "api_version": "2010-04-01",
                                  "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"}, status=201)

    app = web.Application()
    app.add_routes([web.post("/2010-04-01/Accounts/{sid}/Messages.json", create)])
    return app


# --- Web Push endpoint (a browser vendor's push service) ---------------------------------------------

def webpush_app(received: Received, decrypt) -> web.Application:  # noqa: ANN001
    async def push(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("vapid t="):
            return web.Response(status=401, text="missing VAPID authorization")
        fields = dict(part.strip().split("=", 1) for part in authorization[6:].split(","))
        claims = jwt.decode(fields["t"], options={"verify_signature": False})
        if name.startswith("gone"):
            return web.Response(status=410, text="push subscription has unsubscribed or expired.")
        if name.startswith("busy"):
            return web.Response(status=429, text="Too many requests", headers={"Retry-After": "30"})
        if name.startswith("bad"):
            return web.Response(status=413, text="Payload too large")
        body = await request.read()
        received.requests.append({"name": name, "claims": claims, "vapid_k": fields["k"],
                                  "encoding": request.headers.get("Content-Encoding"),
                                  "ttl": request.headers.get("TTL"), "payload": decrypt(name, body)})
        return web.Response(status=201, headers={"Location": f"/messages/{name}-{len(received.requests)}"})

    app = web.Application()
    app.add_routes([web.post("/push/{name}", push)])
    return app


# --- Webhook receiver ----------------------------------------------------------------------------

def webhook_app(secrets: dict[str, str], received: Received) -> web.Application:
    """A receiver whose endpoint /hook/<name> verifies the Standard Webhooks signature with its own secret
    (secrets[name]) through the `standardwebhooks` library, as a real receiver would."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        name = request.match_info["name"]
        try:
            Webhook(secrets[name]).verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            return web.Response(status=401, text="bad signature")
        received.requests.append({"name": name, "body": json.loads(body), "id": request.headers["webhook-id"]})
        if name == "gone":
            return web.Response(status=410, text="endpoint removed")
        if name == "fail":
            return web.Response(status=500, text="oops")
        return web.Response(status=204)

    app = web.Application()
    app.add_routes([web.post("/hook/{name}", hook)])
    return app


# --- APNs: HTTP/2 over TLS (hypercorn) --------------------------------------------------------------

def self_signed_cert(directory) -> tuple[str, str]:  # noqa: ANN001
    """A certificate for 127.0.0.1, and its key; the certificate doubles as the client's CA file."""
    import datetime
    import ipaddress

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
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def apns_asgi_app(public_key_pem: str, key_id: str, team_id: str, topic: str, received: Received):  # noqa: ANN201
    ids = itertools.count(1)

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
        token = scope["path"].rsplit("/", 1)[-1]

        async def answer(status: int, reason: str | None = None, extra: dict | None = None) -> None:
            payload = json.dumps({"reason": reason}).encode() if reason else b""
            response_headers = [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": payload})

        bearer = headers.get("authorization", "").removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(bearer)
            claims = jwt.decode(bearer, public_key_pem, algorithms=["ES256"])
        except jwt.PyJWTError:
            return await answer(403, "InvalidProviderToken")
        if header.get("kid") != key_id or claims.get("iss") != team_id:
            return await answer(403, "InvalidProviderToken")
        if headers.get("apns-topic") != topic:
            return await answer(400, "TopicDisallowed")
        received.requests.append({"token": token, "http_version": scope["http_version"], "payload": json.loads(body),
                                  "push_type": headers.get("apns-push-type")})
        if token.startswith("bad"):
            return await answer(400, "BadDeviceToken")
        if token.startswith("gone"):
            return await answer(410, "Unregistered")
        if token.startswith("busy"):
            return await answer(429, "TooManyRequests")
        if token.startswith("malformed"):
            return await answer(400, "PayloadTooLarge")
        await answer(200, extra={"apns-id": f"00000000-0000-0000-0000-{next(ids):012d}"})

    return app


def serve_http2_tls(app, cert_file: str, key_file: str) -> tuple[ServerThread, str]:  # noqa: ANN001
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = cert_file, key_file
    config.alpn_protocols = ["h2"]
    config.accesslog = config.errorlog = None

    async def start(stop_event: asyncio.Event):  # noqa: ANN202
        task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop_event.wait))
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)

        async def cleanup() -> None:
            await task

        return cleanup

    return ServerThread(start).start(), f"https://127.0.0.1:{port}"


# --- SMTP (aiosmtpd) ---------------------------------------------------------------------------------

class SmtpHandler:
    """Keeps every mail it accepts; refuses nobody@ (550, no such mailbox) and greylisted@ (451)."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("greylisted@"):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"
