"""Production settings and the doors around the API: `check --deploy` is clean with the README's production
environment, configuration errors never show a credential, the admin locks out repeated failed logins,
/metrics needs its token or the internal port, and user tokens are accepted only in the Authorization
header (except on the event stream)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import RequestFactory

from apps.audience.models import Recipient
from apps.audience.tokens import issue

BASE_DIR = Path(__file__).resolve().parents[2]
# The production environment the README documents (Configuration, "A production start").
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0", "NOTIFY_DEVELOPMENT": "0",
    "DJANGO_SECRET_KEY": "k7#Qp2!vX9@mL4$wR8^tZ1&nB6*cF3(hJ5)yD0-eG7+aS2=uK9",
    "DJANGO_ALLOWED_HOSTS": "notify.example.com", "PUBLIC_BASE_URL": "https://notify.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https", "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "METRICS_TOKEN": "scrape-secret",
}


def manage(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *argv], cwd=BASE_DIR, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_check_deploy_is_clean_with_the_documented_production_env():
    done = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert done.returncode == 0 and "no issues" in done.stdout, done.stdout + done.stderr


def test_production_settings_are_secure():
    done = manage("shell", "-c", "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
                  "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS)",
                  **PRODUCTION_ENV)
    assert done.stdout.strip().splitlines()[-1] == ("True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') "
                                   "['https://notify.example.com']"), done.stderr


@pytest.mark.parametrize("name, value", [
    ("REDIS_URL", "ftp://notify:hunter2@redis:6379/0"),
    ("DATABASE_URL", "mysql://notify:hunter2@db:5432/notifications"),
    ("CELERY_BROKER_URL", "http://:hunter2@redis:6379/0"),
])
def test_a_credential_never_appears_in_a_configuration_error(name, value):
    done = manage("check", **{name: value})
    assert done.returncode == 1 and f"configuration error: {name}" in done.stderr, done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "***" in done.stderr


def test_the_admin_locks_out_repeated_failed_logins(client, db, settings):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ops", "ops@example.com", "right-password-1")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        answer = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "wrong"})
        assert answer.status_code == 200  # the form again, with its error
    locked = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "wrong"})
    assert locked.status_code == 429
    right = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "right-password-1"})
    assert right.status_code == 429  # locked out even with the right password, for the cool-off
    User.objects.create_superuser("other", "o@example.com", "right-password-2")
    assert client.post("/admin/login/?next=/admin/", {"username": "other", "password": "right-password-2"}
                       ).status_code == 302


@pytest.mark.parametrize("development, token, port, headers, server_port, allowed", [
    (True, "", 0, {}, "80", True),  # a local run
    (True, "t0ken", 0, {}, "80", False),  # a token set is needed even locally
    (False, "", 0, {}, "8000", False),
    (False, "t0ken", 0, {"HTTP_AUTHORIZATION": "Bearer wrong"}, "8000", False),
    (False, "t0ken", 0, {"HTTP_AUTHORIZATION": "Bearer t0ken"}, "8000", True),
    (False, "", 9100, {}, "8000", False),
    (False, "", 9100, {}, "9100", True),  # the internal port
])
def test_metrics_need_the_token_or_the_internal_port(settings, development, token, port, headers, server_port,
                                                      allowed):
    from apps.monitoring.views import metrics

    settings.DEVELOPMENT, settings.METRICS_TOKEN, settings.METRICS_PORT = development, token, port
    request = RequestFactory().get("/metrics", SERVER_PORT=server_port, **headers)
    if allowed:
        from apps.monitoring.views import may_scrape

        assert may_scrape(request)
    else:
        answer = metrics(request)
        assert answer.status_code == 403 and b"METRICS_TOKEN" in answer.content


@pytest.mark.parametrize("path", ["/api/inbox", "/api/me/preferences"])
def test_user_tokens_only_in_the_authorization_header(client, db, path):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    token = issue(Recipient.objects.create(external_id=f"q-{uuid.uuid4().hex[:8]}"))
    assert client.get(path, {"token": token}).status_code == 401
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
