"""Local servers on 127.0.0.1 that speak the providers' wire protocols, one module per protocol:
FCM HTTP v1 with its OAuth token exchange, APNs over HTTP/2 and TLS, Web Push with decryption, SMTP,
Twilio and a webhook receiver. Development only (tests and `bench_fanout --provider X`): nothing in
production imports them. Each runs in-process on a thread (the tests) or as a process of its own
(`manage.py protocol_server`, the benchmark), counting what it accepted per device.
"""

from .apns import apns_asgi_app, self_signed_cert, serve_http2_tls
from .common import Counts, Quota, Received, ServerThread, control_app, free_port, serve_aiohttp
from .fcm import fcm_app
from .smtp import SmtpHandler
from .twilio import twilio_app
from .webhook import webhook_app
from .webpush import webpush_app

__all__ = ["Counts", "Quota", "Received", "ServerThread", "SmtpHandler", "apns_asgi_app", "control_app", "fcm_app",
           "free_port", "self_signed_cert", "serve_aiohttp", "serve_http2_tls", "twilio_app", "webhook_app",
           "webpush_app"]
