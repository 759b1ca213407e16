"""A protocol server as a process of its own (`manage.py protocol_server`), for `bench_fanout --provider X`.

`write_credentials` makes throwaway credentials in a directory (an RSA service-account key for FCM, an
EC P-256 signing key and a TLS certificate for APNs) and returns the settings
that point a worker's adapter at the server with them. The server reads the same directory: the
public halves verify what the adapter signs. Nothing here is a secret worth keeping: the directory
is deleted after the run.

Each server answers its protocol on `port` and the fake provider's GET /stats and POST /reset on
`control_port` (counts per device, requests, bytes, 429s), so FakeProviderControl reads any of them.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .common import Counts, Quota, control_app, start_aiohttp

PROTOCOLS = ("fcm", "apns", "email")
FCM_PROJECT = "bench-project"
APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC = "BENCHKEY01", "BENCHTEAM1", "com.example.bench"
FROM_EMAIL = "alerts@example.test"
# FCM's default quota is 600,000 messages a minute per project: 10,000 a second.
DEFAULT_QUOTA_PER_S = {"fcm": 10_000.0}


def _pem(key, private: bool = True) -> bytes:  # noqa: ANN001
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_credentials(protocol: str, directory: Path, port: int) -> dict[str, str]:
    """Credentials for `protocol` in `directory`; the worker settings (environment) that use them."""
    directory = Path(directory)
    if protocol == "fcm":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = directory / "fcm-service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": FCM_PROJECT, "private_key_id": "bench",
            "private_key": _pem(key).decode(), "client_email": f"sender@{FCM_PROJECT}.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"http://127.0.0.1:{port}/token"}))
        path.chmod(0o600)
        return {"FCM_CREDENTIALS_FILE": str(path), "FCM_ENDPOINT": f"http://127.0.0.1:{port}"}
    if protocol == "apns":
        from .apns import self_signed_cert

        key_path = directory / "AuthKey.p8"
        key_path.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
        key_path.chmod(0o600)
        cert, _ = self_signed_cert(directory)
        return {"APNS_KEY_FILE": str(key_path), "APNS_KEY_ID": APNS_KEY_ID, "APNS_TEAM_ID": APNS_TEAM_ID,
                "APNS_TOPIC": APNS_TOPIC, "APNS_ENDPOINT": f"https://127.0.0.1:{port}", "APNS_CA_FILE": cert}
    if protocol == "email":
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(port), "DEFAULT_FROM_EMAIL": FROM_EMAIL}
    raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")


def _public_pem(private_pem: bytes) -> str:
    return _pem(serialization.load_pem_private_key(private_pem, password=None), private=False).decode()


async def _start(protocol: str, port: int, directory: Path, counts: Counts, stop: asyncio.Event):  # noqa: ANN202
    if protocol == "fcm":
        from .fcm import fcm_app

        account = json.loads((directory / "fcm-service-account.json").read_text())
        return await start_aiohttp(fcm_app(_public_pem(account["private_key"].encode()), counts=counts), port)
    if protocol == "apns":
        from .apns import apns_asgi_app, start_http2_tls

        app = apns_asgi_app(_public_pem((directory / "AuthKey.p8").read_bytes()), APNS_KEY_ID, APNS_TEAM_ID,
                            APNS_TOPIC, counts=counts)
        return await start_http2_tls(app, port, str(directory / "cert.pem"), str(directory / "key.pem"), stop)
    from aiosmtpd.smtp import SMTP

    from .smtp import SmtpHandler

    handler = SmtpHandler(counts, keep=False)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="127.0.0.1", data_size_limit=1 << 20), "127.0.0.1", port)

    async def close() -> None:
        server.close()

    return close


def serve(protocol: str, port: int, control_port: int, directory: Path, latency_ms: float = 0.0,
          quota_per_s: float | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    quota = DEFAULT_QUOTA_PER_S.get(protocol, 0.0) if quota_per_s is None else quota_per_s
    counts = Counts(latency_ms, Quota(quota))

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        close_protocol = await _start(protocol, port, Path(directory), counts, stop)
        close_control = await start_aiohttp(control_app(counts), control_port)
        await stop.wait()
        await close_control()
        await close_protocol()

    asyncio.run(main())
