"""A production start with a provider half configured (some of its credentials set, one missing) stops
with one line naming the missing setting, never a value; a provider with nothing set is only "not
configured", and a local run (NOTIFY_DEVELOPMENT=1) is not refused."""

from __future__ import annotations

import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-" + secrets.token_hex(8)  # must never be printed


def production(**extra: str) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
            "NOTIFY_DEVELOPMENT": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PUBLIC_BASE_URL": "https://notify.example.test", **extra}


def start(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return start([sys.executable, "manage.py", "check"], env)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "apns.p8"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n")
    return path


def test_a_half_configured_provider_is_named_in_one_line(key_file, tmp_path):
    token_file = tmp_path / "twilio_auth_token"
    token_file.write_text(SECRET)
    cases = {
        "APNS_KEY_FILE, APNS_TOPIC: not set, but push (APNs) is enabled (APNS_KEY_ID, APNS_TEAM_ID are set)":
            {"APNS_KEY_ID": SECRET, "APNS_TEAM_ID": SECRET},
        "TWILIO_FROM_NUMBER: not set, but sms (Twilio) is enabled (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN are set)":
            {"TWILIO_ACCOUNT_SID": SECRET, "TWILIO_AUTH_TOKEN_FILE": str(token_file)},
        "FCM_CREDENTIALS_FILE: not set, but push (FCM) is enabled (FCM_PROJECT_ID is set)":
            {"FCM_PROJECT_ID": "my-project"},
        "FCM_CREDENTIALS_FILE: expected a readable key file for push (FCM), got '/run/secrets/providers/nope.json'":
            {"FCM_CREDENTIALS_FILE": "/run/secrets/providers/nope.json"},
        "WEBPUSH_VAPID_SUBJECT: not set, but push (Web Push) is enabled (WEBPUSH_VAPID_PRIVATE_KEY is set)":
            {"WEBPUSH_VAPID_PRIVATE_KEY": SECRET},
        "EMAIL_HOST: not set, but email (SMTP) is enabled (EMAIL_HOST_USER, EMAIL_HOST_PASSWORD are set)":
            {"EMAIL_HOST_USER": "mailer", "EMAIL_HOST_PASSWORD": SECRET},
        "ANYMAIL_<ESP>_API_KEY: not set, but email is enabled through anymail.backends.postmark.EmailBackend":
            {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend"},
    }
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(cases, pool.map(lambda extra: check(production(**extra)), cases.values()), strict=True))
    for expected, result in done.items():
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (expected, result.stderr)
        assert lines[0].startswith(f"configuration error: {expected}"), lines[0]
        assert SECRET not in result.stdout + result.stderr


def test_complete_unconfigured_and_local_starts_are_not_refused(key_file):
    complete = {"APNS_KEY_FILE": str(key_file), "APNS_KEY_ID": "K", "APNS_TEAM_ID": "T", "APNS_TOPIC": "app",
                "WEBPUSH_VAPID_PRIVATE_KEY": SECRET, "WEBPUSH_VAPID_SUBJECT": "mailto:ops@example.test"}
    envs = [production(**complete), production(), {**production(APNS_KEY_ID=SECRET), "NOTIFY_DEVELOPMENT": "1"}]
    with ThreadPoolExecutor(3) as pool:
        for result in pool.map(check, envs):
            assert result.returncode == 0, result.stderr


def test_worker_and_web_starts_stop_with_the_line():
    env = production(TWILIO_ACCOUNT_SID=SECRET)
    line = ("configuration error: TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER: not set, but sms (Twilio) is enabled "
            "(TWILIO_ACCOUNT_SID is set)")
    worker = [sys.executable, "-m", "celery", "-A", "notifications_project", "worker", "-Q", "send.normal", "-c", "1"]
    web = [sys.executable, "-m", "gunicorn", "notifications_project.asgi:application", "-k",
           "uvicorn_worker.UvicornWorker", "--preload", "-b", "127.0.0.1:0", "-w", "1"]
    with ThreadPoolExecutor(2) as pool:
        for result in pool.map(lambda argv: start(argv, env), (worker, web)):
            assert result.returncode != 0 and line in result.stderr, result.stderr[-2000:]
            assert [text for text in result.stderr.splitlines() if "configuration error" in text] == [
                line + "; set them, or unset TWILIO_ACCOUNT_SID"], result.stderr[-2000:]
            assert SECRET not in result.stdout + result.stderr


def test_a_worker_start_names_the_providers_not_configured(tmp_path):
    """Nothing set is no error, but the worker says in one line which providers will fail their recipients.
    PostgreSQL and Redis point at a closed port, so the worker waits there and takes no task."""
    from apps.streaming.local_broker import free_port

    closed = free_port()
    env = production(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/none", REDIS_URL=f"redis://127.0.0.1:{closed}/0",
                     TWILIO_ACCOUNT_SID=SECRET, TWILIO_AUTH_TOKEN=SECRET, TWILIO_FROM_NUMBER="+15005550006",
                     PROMETHEUS_MULTIPROC_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "notifications_project", "worker", "-n",
                                   "idle@%h", "-Q", "send.low", "-c", "1"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "waiting for redis" in log.read_text(), 60, 0.2, "the worker to wait")
        lines = [line for line in log.read_text().splitlines() if "providers not configured" in line]
        assert len(lines) == 1, log.read_text()[-2000:]
        assert ("push (FCM) (set FCM_CREDENTIALS_FILE); push (APNs) (set APNS_KEY_FILE, APNS_KEY_ID, APNS_TEAM_ID, "
                "APNS_TOPIC); push (Web Push) (set WEBPUSH_VAPID_PRIVATE_KEY, WEBPUSH_VAPID_SUBJECT); email (SMTP) "
                "(set EMAIL_HOST)") in lines[0]
        assert "sms" not in lines[0] and SECRET not in log.read_text()
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait()
