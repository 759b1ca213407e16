"""Settings, all from the environment (see README "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path

from .client_ip import trusted_proxies
from .credentials import check_provider_credentials
from .env import (
    ConfigError,
    database_settings,
    env_bool,
    env_int,
    env_list,
    env_origins,
    env_proxy_header,
    env_str,
    env_url,
    load_secret_files,
    running_under_pytest,
)
from .logging_settings import logging_config

load_secret_files()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("NOTIFY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
if running_under_pytest():  # the processes a test starts are local runs too
    os.environ.setdefault("NOTIFY_DEVELOPMENT", "1")
# A start with DEBUG off is a production start unless it says it is a local run (bin/goal-alert, bin/test
# and pytest do): then the development defaults below are refused.
DEVELOPMENT = DEBUG or env_bool("NOTIFY_DEVELOPMENT", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_beat",
    "axes",  # admin login lockout
    "ninja",  # its static files: the API docs page works offline and with DEBUG off (whitenoise)
    "apps.core",
    "apps.audience",
    "apps.preferences",
    "apps.content",
    "apps.campaigns",
    "apps.delivery",
    "apps.callbacks",
    "apps.attachments",
    "apps.inbox",
    "apps.monitoring",
    "apps.bridge",
    "apps.providers",
    "apps.streaming",
    "apps.api",
    "apps.receipts",
]
# The development harness (benchmarks, chaos, the process stack, local protocol servers, seeding): local runs
# only; the production image leaves the folder out.
if DEVELOPMENT:
    INSTALLED_APPS.append("apps.harness")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files with DEBUG off, from STATIC_ROOT
    "apps.api.json_errors.JsonErrorsMiddleware",  # every error under /api/ as JSON, whoever answered it
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out login
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Admin login lockout (django-axes): this many failures for one username from one address lock that pair out
# for the cool-off; a successful login resets the count.
AXES_FAILURE_LIMIT = env_int("NOTIFY_ADMIN_LOGIN_FAILURE_LIMIT", 5, 1)
AXES_COOLOFF_TIME = env_int("NOTIFY_ADMIN_LOCKOUT_MINUTES", 15, 1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # its log lines name the username and address; ours name neither
# Behind a reverse proxy the client's address is in X-Forwarded-For, believed only from these proxies
# (FORWARDED_ALLOW_IPS, gunicorn's own variable and default, so the server and the lockout agree).
TRUSTED_PROXIES = trusted_proxies()
AXES_CLIENT_IP_CALLABLE = "notifications_project.client_ip.client_ip"

ROOT_URLCONF = "notifications_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "notifications_project.wsgi.application"
ASGI_APPLICATION = "notifications_project.asgi.application"

# Each pytest run gets its own database, Redis key prefix and Kafka topic prefix.
RUN_ID = env_str("NOTIFY_RUN_ID", f"t{os.getpid()}" if running_under_pytest() else "")

DATABASES = {"default": database_settings("postgres://postgres@127.0.0.1:5432/notifications")}
if RUN_ID:
    DATABASES["default"]["TEST"] = {"NAME": f"test_notifications_{RUN_ID}"}

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
# Frequency caps and provider rate limits may use their own Redis; transactional sends go on without it.
THROTTLE_REDIS_URL = env_url("THROTTLE_REDIS_URL", REDIS_URL, ("redis", "rediss", "unix"))
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", f"notify:{RUN_ID}:" if RUN_ID else "notify:")

# Kafka. Empty bootstrap servers mean "use the local Tansu broker started by `kafka_broker`".
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "")
KAFKA_TOPIC_PREFIX = env_str("KAFKA_TOPIC_PREFIX", f"{RUN_ID}." if RUN_ID else "")
from .kafka_settings import *  # noqa: E402, F403 (partitions, fetch waits, authentication, replication)

# Bulk workers sharing a host with PostgreSQL may lower their backends' CPU priority (apps/core/db_priority.py).
DB_NICE = env_int("NOTIFY_DB_NICE", 0, 0)

# Fan-out sizes.
DISPATCH_BATCH_SIZE = env_int("NOTIFY_DISPATCH_BATCH_SIZE", 5000, 1)
# Recipients per provider call (NOTIFY_SEND_CHUNK_SIZE is its name before 2026-12, still read).
PROVIDER_CALL_SIZE = env_int("NOTIFY_PROVIDER_CALL_SIZE", env_int("NOTIFY_SEND_CHUNK_SIZE", 500, 1), 1)
# Internal bus messages (batch, retry and deferred topics) carry an HMAC of their body with the first key;
# any key verifies, so a new key goes first and the old one stays listed until its messages have drained.
BUS_SIGNING_KEYS = env_list("NOTIFY_BUS_SIGNING_KEYS", [f"derived-from-secret-key:{SECRET_KEY}"])
# Workers and bridges collect cyclic garbage after this many new objects (Python's default: 700); 0 keeps
# Python's defaults (apps/core/garbage_collector.py).
GC_YOUNG_THRESHOLD = env_int("NOTIFY_GC_YOUNG_THRESHOLD", 50_000, 0)
# Provider calls of one batch in flight at once, per worker process (transports that allow it).
PROVIDER_CALLS_IN_FLIGHT = env_int("NOTIFY_PROVIDER_CALLS_IN_FLIGHT", 4, 1)

# Celery: Redis broker, one queue per purpose (see apps/core/queues.py).
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, ("redis", "rediss", "unix"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_KEY_PREFIX}celery:",
    # A task whose worker died (or lost Redis) before acknowledging it is delivered again this long
    # after it was taken, found by a scan every unacked_restore_interval seconds.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, 30),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_SECONDS", 10, 1),
    "unacked_restore_throttle": 1,
}
# Not Celery 6's default: on losing the broker, a task in progress runs on and records what it sent in
# PostgreSQL. Cancelling it would kill it between the provider call and the INSERT, and with Redis
# away the sent journal cannot be written either, so its batch would be sent again.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_PREFETCH_MULTIPLIER", 4, 1)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "notifications_project.beat_scheduler:DatabaseScheduler"  # waits for its stores
CELERY_TASK_ALWAYS_EAGER = False
# Celery closes Django's database connection around every task unless this is set: a new PostgreSQL
# backend per 500-recipient batch, and per OTP. Reuse it (a broken one is dropped on the first error).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, 0)

from .provider_settings import *  # noqa: E402, F403 (each provider's endpoint, credentials and rate)

RECIPIENT_TOKEN_MAX_AGE_SECONDS = env_int("RECIPIENT_TOKEN_MAX_AGE_SECONDS", 7 * 86400, 60)
INBOX_STREAM_MAX_SECONDS = env_int("INBOX_STREAM_MAX_SECONDS", 300, 1)  # clients reconnect with Last-Event-ID
INBOX_KEEP_ALIVE_SECONDS = env_int("INBOX_KEEP_ALIVE_SECONDS", 15, 1)  # a comment line on a silent stream

# Retries due within this many seconds wait in Celery (countdown); later ones wait in notify.retry.
RETRY_HOLD_SECONDS = env_int("NOTIFY_RETRY_HOLD_SECONDS", 5, 0)
# Deferred sends (frequency caps, quiet hours) wait in notify.deferred. The topic's partitions are
# time slots (48 h / partitions each), so a partition holds its messages in due order; a batch due
# within the hold goes to Celery with a countdown. Keep the hold under CELERY_VISIBILITY_TIMEOUT.
KAFKA_DEFERRED_PARTITIONS = env_int("KAFKA_DEFERRED_PARTITIONS", 96, 1)
DEFERRED_HOLD_SECONDS = env_int("NOTIFY_DEFERRED_HOLD_SECONDS", 300, 0)
# How often an unfinished notification is checked against PostgreSQL (the counters' safety net).
RECONCILE_SECONDS = env_int("NOTIFY_RECONCILE_SECONDS", 15, 1)
# A dispatched notification with recipients open and nothing recorded for this long is dispatched
# again (only unclaimed recipients are sent). Keep it above CELERY_VISIBILITY_TIMEOUT.
REDISPATCH_STALLED_SECONDS = env_int("NOTIFY_REDISPATCH_STALLED_SECONDS", 900, 10)
# When the throttle store is unreachable, capped sends are tried again after this long.
THROTTLE_OUTAGE_DEFER_SECONDS = env_int("NOTIFY_THROTTLE_OUTAGE_DEFER_SECONDS", 60, 1)
# Tests only: every process reads an offset from Redis, so a test can move time on (apps/core/clock.py).
CONTROLLABLE_CLOCK = env_bool("NOTIFY_CONTROLLABLE_CLOCK", running_under_pytest())
# Signed links in emails: one-click unsubscribe and the preference page.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
SIGNED_LINK_MAX_AGE_SECONDS = env_int("NOTIFY_SIGNED_LINK_MAX_AGE_SECONDS", 60 * 86400, 60)

# A worker waits at most this long for a provider's shared rate limit before rescheduling the batch.
RATE_LIMIT_MAX_WAIT_SECONDS = env_int("NOTIFY_RATE_LIMIT_MAX_WAIT_SECONDS", 2, 0)

# Monitoring. Prometheus multiprocess mode: every process (web, prefork children, bridges) writes its
# samples to files in this directory, and /metrics adds them up. It must be set before
# prometheus_client is imported, hence here; empty it when a deployment starts.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus" / (RUN_ID or "main")))
if running_under_pytest():  # each test process its own (pytest-xdist workers inherit the controller's environment)
    PROMETHEUS_MULTIPROC_DIR = str(VAR_DIR / "prometheus" / RUN_ID)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
HEALTH_CHECK_TIMEOUT_SECONDS = env_int("HEALTH_CHECK_TIMEOUT_SECONDS", 2, 1)
# A long-running command (bridge) exits non-zero when a dependency has been gone this long.
DEPENDENCY_GRACE_SECONDS = env_int("NOTIFY_DEPENDENCY_GRACE_SECONDS", 120, 1)

# Campaigns: launching one that reaches more users than this asks for confirmation first.
CAMPAIGN_CONFIRM_ABOVE = env_int("NOTIFY_CAMPAIGN_CONFIRM_ABOVE", 100_000, 0)
# "Send test to me" waits this long for every channel's outcome before answering "no outcome yet".
CAMPAIGN_TEST_SEND_WAIT_SECONDS = env_int("NOTIFY_TEST_SEND_WAIT_SECONDS", 8, 1)

# HTTP API.
API_MAX_BODY_BYTES = env_int("NOTIFY_API_MAX_BODY_BYTES", 256 * 1024, 1024)
API_RATE_PER_MINUTE = env_int("NOTIFY_API_RATE_PER_MINUTE", 1200, 0)  # per API key, unless the key sets its own
IDEMPOTENCY_TTL_SECONDS = env_int("NOTIFY_IDEMPOTENCY_TTL_SECONDS", 86400, 60)  # campaign occurrences: for ever
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# Status callbacks to the calling services (apps/callbacks): each attempt's timeout, how many attempts,
# the backoff (base x 3^(attempt-1), at most the maximum); retries due within the hold wait in Celery,
# later ones are sent by the sweep (beat, every minute); recipients per delivery.failed message.
CALLBACK_TIMEOUT_SECONDS = env_int("NOTIFY_CALLBACK_TIMEOUT_SECONDS", 10, 1)
CALLBACK_MAX_ATTEMPTS = env_int("NOTIFY_CALLBACK_MAX_ATTEMPTS", 8, 1)
CALLBACK_RETRY_BASE_SECONDS = env_int("NOTIFY_CALLBACK_RETRY_BASE_MS", 30_000, 1) / 1000
CALLBACK_RETRY_MAX_SECONDS = env_int("NOTIFY_CALLBACK_RETRY_MAX_SECONDS", 3600, 1)
CALLBACK_HOLD_SECONDS = env_int("NOTIFY_CALLBACK_HOLD_SECONDS", 300, 0)
CALLBACK_BATCH_SIZE = env_int("NOTIFY_CALLBACK_BATCH_SIZE", 500, 1)
CELERY_BEAT_SCHEDULE = {"callbacks-sweep": {"task": "callbacks.sweep", "schedule": 60.0,
                                            "options": {"queue": "callbacks"}}}
# Local-time campaign waves whose release met an outage are looked for this often (campaigns.sweep_parts).
CAMPAIGN_SWEEP_SECONDS = env_int("NOTIFY_CAMPAIGN_SWEEP_SECONDS", 60, 1)
CELERY_BEAT_SCHEDULE["campaigns-sweep-parts"] = {"task": "campaigns.sweep_parts",
                                                 "schedule": float(CAMPAIGN_SWEEP_SECONDS),
                                                 "options": {"queue": "dispatch"}}
# Bulk import of recipients over the API (POST /api/recipient-imports): the largest body.
IMPORT_MAX_BYTES = env_int("NOTIFY_IMPORT_MAX_BYTES", 256 * 1024 * 1024, 1024)

from .attachment_settings import *  # noqa: E402, F403 (limits, types, links)
from .attachment_settings import attachment_storage  # noqa: E402

STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            "attachments": attachment_storage(VAR_DIR / "attachments" / RUN_ID)}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
# The end-user pages (preferences, unsubscribe) ship in these languages (README "Attachments and translated pages");
# the catalogs are locale/<lang>/LC_MESSAGES/django.po, compiled at set-up by `manage.py compile_translations`.
LANGUAGES = [("en", "English"), ("es", "Español"), ("pt", "Português")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))  # filled by `manage.py collectstatic`
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "text")  # "json": one JSON object per line (production)
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)

# Behind a TLS-terminating proxy (README "Production configuration"). Cookies are secure and HSTS is a year
# unless this is a local run; the redirect to https is the proxy's job unless DJANGO_SECURE_SSL_REDIRECT is on.
SECURE_PROXY_SSL_HEADER = env_proxy_header("DJANGO_SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapes speak plain http inside
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEVELOPMENT)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEVELOPMENT)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEVELOPMENT else 365 * 86400, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
CSRF_TRUSTED_ORIGINS = env_origins("DJANGO_CSRF_TRUSTED_ORIGINS",
                                   [PUBLIC_BASE_URL] if PUBLIC_BASE_URL.startswith("https://") else [])
# /metrics on the web tier: with this token (Authorization: Bearer), or on METRICS_PORT, an internal port the
# web server also listens on; a local run serves it to anyone unless a token is set.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_PORT = env_int("METRICS_PORT", 0, 0)

# Last, so that a malformed value above is reported first: what a production start refuses.
if not DEVELOPMENT and SECRET_KEY.startswith("dev-only"):
    raise ConfigError("DJANGO_SECRET_KEY", "a secret in production (NOTIFY_DEVELOPMENT=1 for a local run)",
                      "the dev default")
if not DEVELOPMENT and not PUBLIC_BASE_URL.startswith("https://"):
    raise ConfigError("PUBLIC_BASE_URL", "an https:// URL in production (NOTIFY_DEVELOPMENT=1 for a local run)",
                      PUBLIC_BASE_URL)
if not DEVELOPMENT:  # a provider half configured would fail every one of its recipients
    check_provider_credentials(globals())
