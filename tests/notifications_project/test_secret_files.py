"""Secrets mounted as files (<NAME>_FILE, as docker-compose does), and the dependency check that compose's
health checks run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def test_secret_files_and_the_dependency_health_check(tmp_path):
    """Secrets as files (<NAME>_FILE), an unreadable one named in one line; beat's check names what is down."""
    env = {"PATH": os.environ["PATH"], "NOTIFY_DEVELOPMENT": "1"}
    missing = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, capture_output=True, text=True,
                             env={**env, "DJANGO_SECRET_KEY_FILE": str(tmp_path / "nope")}, timeout=60)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"configuration error: DJANGO_SECRET_KEY_FILE: expected a readable file holding the secret, "
        f"got '{tmp_path / 'nope'} (No such file or directory)'"]
    (tmp_path / "key").write_text("from-a-file-" + "x" * 50 + "\n")
    shown = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                            "from django.conf import settings; print(settings.SECRET_KEY)"], cwd=BASE_DIR,
                           capture_output=True, text=True, env={**env, "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")},
                           timeout=60)
    assert shown.stdout.strip().splitlines()[-1] == "from-a-file-" + "x" * 50, shown.stderr
    # The server's own database: the development one need not exist (a fresh machine).
    down = subprocess.run([sys.executable, "manage.py", "check_dependencies", "postgres", "redis"], cwd=BASE_DIR,
                          capture_output=True, text=True, timeout=60,
                          env={**env, "REDIS_URL": "redis://127.0.0.1:1/0",
                               "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"})
    assert down.returncode == 1 and "down: redis" in down.stderr and "postgres" not in down.stderr
