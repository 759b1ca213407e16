"""The web tier as production runs it: the README's gunicorn command with uvicorn workers, DEBUG off,
on 127.0.0.1 and a free port, against this run's database, Redis prefix and a static root of its own."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apps.harness.processes import Stack
from apps.streaming.local_broker import free_port

SECRET_KEY = "web-tier-test-secret"  # a production start refuses the dev default
WEB_COMMAND = ["gunicorn", "notifications_project.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
               "--preload"]


def production_env(stack: Stack, static_root: Path, **extra: str) -> dict[str, str]:
    from django.conf import settings

    # its own SECRET_KEY, but the bus key the workers and bridges hold (as every service shares it in production),
    # or the bridge refuses the web's events as forged
    bus_keys = stack.env.get("NOTIFY_BUS_SIGNING_KEYS") or ",".join(settings.BUS_SIGNING_KEYS)
    return {**stack.env, "DJANGO_DEBUG": "0", "NOTIFY_DEVELOPMENT": "0", "DJANGO_SECRET_KEY": SECRET_KEY,
            "NOTIFY_BUS_SIGNING_KEYS": bus_keys,
            "PUBLIC_BASE_URL": "https://notify.example.com", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_CONN_MAX_AGE": "0", "DATABASE_POOL_SIZE": "4", "STATIC_ROOT": str(static_root), **extra}


@contextmanager
def web_server(static_root: Path, workers: int = 1, **extra_env: str) -> Iterator[str]:
    """Collect static files into static_root, start the web tier, yield its base URL; stop it after."""
    stack = Stack()
    stack.env = production_env(stack, static_root, **extra_env)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], env=stack.env,
                   check=True, cwd=Path(__file__).resolve().parent.parent)
    port = free_port()
    stack.spawn("web", [sys.executable, "-m", *WEB_COMMAND, "-b", f"127.0.0.1:{port}", "-w", str(workers)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if stack.processes["web"].poll() is not None or time.monotonic() > deadline:
                    log = (stack.log_dir / "web.log").read_text()[-2000:]
                    raise AssertionError(f"the web server did not start:\n{log}") from None
                time.sleep(0.2)
        yield url
    finally:
        stack.stop()
