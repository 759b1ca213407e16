"""Provider settings (imported into settings.py): each provider's endpoint, credentials and rate. A channel whose
settings are empty is "not configured" (apps/providers/registry.py)."""

import os

from .env import ConfigError, env_bool, env_int, env_list, env_str, running_under_pytest

# Providers.
FAKE_PROVIDER_URL = env_str("FAKE_PROVIDER_URL", "")
# Benchmarks: push devices of every platform (FCM, APNs, Web Push) go to the fake provider, tokens unchanged.
FAKE_PROVIDER_ROUTE_ALL_PUSH = env_bool("FAKE_PROVIDER_ROUTE_ALL_PUSH", False)
# Benchmarks only (bench_fanout --provider fcm|apns): push devices of every platform go to this
# platform's real adapter, tokens unchanged. Never set in production.
BENCH_ROUTE_ALL_PUSH_TO = env_str("BENCH_ROUTE_ALL_PUSH_TO", "")
if BENCH_ROUTE_ALL_PUSH_TO not in ("", "fake", "fcm", "apns"):
    raise ConfigError("BENCH_ROUTE_ALL_PUSH_TO", "fake, fcm, apns or empty", BENCH_ROUTE_ALL_PUSH_TO)
PROVIDER_TIMEOUT_SECONDS = env_int("PROVIDER_TIMEOUT_SECONDS", 10, 1)
# Provider credentials. A channel whose settings are empty is "not configured": its recipients fail
# with that reason, never silently skipped. Rates are each provider's send quota per second (0: none).
FCM_CREDENTIALS_FILE = env_str("FCM_CREDENTIALS_FILE", "")
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID", "")
FCM_ENDPOINT = env_str("FCM_ENDPOINT", "https://fcm.googleapis.com")
FCM_RATE_PER_S = env_int("FCM_RATE_PER_S", 10_000, 0)  # FCM's default quota: 600,000 messages a minute
APNS_KEY_FILE = env_str("APNS_KEY_FILE", "")
APNS_KEY_ID = env_str("APNS_KEY_ID", "")
APNS_TEAM_ID = env_str("APNS_TEAM_ID", "")
APNS_TOPIC = env_str("APNS_TOPIC", "")
APNS_ENDPOINT = env_str("APNS_ENDPOINT", "https://api.push.apple.com")
APNS_CA_FILE = env_str("APNS_CA_FILE", "")
APNS_RATE_PER_S = env_int("APNS_RATE_PER_S", 0, 0)
WEBPUSH_VAPID_PRIVATE_KEY = env_str("WEBPUSH_VAPID_PRIVATE_KEY", "")  # a .pem path, or the key itself
WEBPUSH_VAPID_SUBJECT = env_str("WEBPUSH_VAPID_SUBJECT", "")  # mailto: or https: contact for push services
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
TWILIO_RATE_PER_S = env_int("TWILIO_RATE_PER_S", 100, 0)
# Ask Twilio for status callbacks (delivered, undelivered, failed) at PUBLIC_BASE_URL/receipts/twilio/status.
TWILIO_STATUS_CALLBACKS = env_bool("TWILIO_STATUS_CALLBACKS", True)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, 1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, 1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "notifications@localhost")
EMAIL_RATE_PER_S = env_int("EMAIL_RATE_PER_S", 0, 0)
ANYMAIL = {key[8:]: value for key, value in os.environ.items()
           if key.startswith("ANYMAIL_") and not key.endswith("_FILE")}
# Webhook and Web Push URLs must be https and resolve to public addresses, except on these hosts (tests,
# a receiver on the same host). pytest's own processes allow the local protocol servers the tests start.
OUTBOUND_ALLOWED_HOSTS = env_list("NOTIFY_OUTBOUND_ALLOWED_HOSTS",
                                  ["127.0.0.1", "localhost"] if running_under_pytest() else [])
FAKE_PUSH_RATE_PER_S = env_int("FAKE_PUSH_RATE_PER_S", 0, 0)
