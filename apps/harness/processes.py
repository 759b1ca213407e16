"""Start the platform's real processes as children: the local broker, the fake provider, Celery
workers and bridges. Used by bench_fanout and by the test suite; production runs the same commands
under docker-compose."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core import queues
from apps.streaming.local_broker import free_port, start_tansu, wait_for_port

BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Stack:
    """The child processes of one run; stop() ends them all."""

    env: dict = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path = BASE_DIR / "var" / "log"
    restarts: dict[str, int] = field(default_factory=dict)
    _commands: dict[str, tuple[list[str], dict]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _supervising: bool = False
    _temp_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "notifications_project.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
            "KAFKA_TOPIC_PREFIX": settings.KAFKA_TOPIC_PREFIX,
            "KAFKA_PARTITIONS": str(settings.KAFKA_PARTITIONS),
            "NOTIFY_RUN_ID": "",
            "NOTIFY_CONTROLLABLE_CLOCK": "1" if settings.CONTROLLABLE_CLOCK else "0",
            "THROTTLE_REDIS_URL": settings.THROTTLE_REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "FAKE_PROVIDER_URL"):
            if getattr(settings, name):
                self.env[name] = getattr(settings, name)

    def spawn(self, name: str, argv: list[str], nice: int = 0) -> subprocess.Popen:
        """`nice`: a lower CPU priority for the process and its database backends (bulk work on a shared host)."""
        env = {**self.env, "NOTIFY_DB_NICE": str(nice)} if nice else dict(self.env)
        argv = ["nice", "-n", str(nice), *argv] if nice else argv
        with self._lock:
            self._commands[name] = (argv, env)
            return self._popen(name)

    def _popen(self, name: str) -> subprocess.Popen:
        argv, env = self._commands[name]
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def supervise(self) -> None:
        """Restart a process that exits on its own, as docker-compose's `restart: unless-stopped` does.
        kill() is a deliberate stop and is not undone."""
        self._supervising = True
        threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while self._supervising:
            with self._lock:
                for name, process in list(self.processes.items()):
                    if self._supervising and name in self._commands and process.poll() is not None:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self._popen(name)
            time.sleep(0.5)

    def start_broker(self) -> str:
        """Start Tansu unless KAFKA_BOOTSTRAP_SERVERS names a broker; returns bootstrap servers."""
        if self.env.get("KAFKA_BOOTSTRAP_SERVERS"):
            return self.env["KAFKA_BOOTSTRAP_SERVERS"]
        process, servers = start_tansu(log_path=self.log_dir / "tansu.log")
        self.processes["broker"] = process
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = servers
        settings.KAFKA_BOOTSTRAP_SERVERS = servers
        return servers

    def isolate(self, name: str) -> dict[str, str]:
        """Give this stack a Redis key prefix (so its own Celery queues) and Kafka topics of its own, beside
        another stack of the same run; returns them (a caller publishing to it uses the topic prefix)."""
        prefixes = {"REDIS_KEY_PREFIX": f"{settings.REDIS_KEY_PREFIX}{name}:",
                    "KAFKA_TOPIC_PREFIX": f"{settings.KAFKA_TOPIC_PREFIX}{name}."}
        self.env.update(prefixes)
        return prefixes

    def start_fake_provider(self, latency_ms: float = 0.0) -> str:
        port = free_port()
        self.spawn("fake-provider", [sys.executable, "manage.py", "fake_provider", "--port", str(port),
                                     "--latency-ms", str(latency_ms)])
        wait_for_port("127.0.0.1", port, timeout=60)  # a loaded shared host can take over 10 s to import Django
        url = f"http://127.0.0.1:{port}"
        self.env["FAKE_PROVIDER_URL"] = url
        settings.FAKE_PROVIDER_URL = url
        return url

    def start_protocol_server(self, protocol: str, latency_ms: float = 0.0, quota_per_s: float | None = None) -> str:
        """A local server speaking `protocol` (fcm, apns, email), with throwaway credentials in a
        temporary directory (removed by stop()); the workers started after this get the settings that
        point that adapter at it. Returns the URL of its stats (FakeProviderControl reads them)."""
        from apps.harness.protocol_servers.standalone import write_credentials

        port, control_port = free_port(), free_port()
        directory = Path(tempfile.mkdtemp(prefix=f"notify-{protocol}-"))
        self._temp_dirs.append(directory)
        self.env.update(write_credentials(protocol, directory, port))
        argv = [sys.executable, "manage.py", "protocol_server", protocol, "--port", str(port),
                "--control-port", str(control_port), "--credentials-dir", str(directory),
                "--latency-ms", str(latency_ms)]
        if quota_per_s is not None:
            argv += ["--quota-per-s", str(quota_per_s)]
        self.spawn(f"{protocol}-server", argv)
        wait_for_port("127.0.0.1", control_port, timeout=60)
        wait_for_port("127.0.0.1", port, timeout=60)
        return f"http://127.0.0.1:{control_port}"

    def start_worker(self, name: str, queue_names: list[str], concurrency: int, nice: int = 0,
                     pool: str = "prefork") -> None:
        self.spawn(name, [sys.executable, "-m", "celery", "-A", "notifications_project", "worker",
                          "-n", f"{name}@%h", "-Q", ",".join(queue_names), "-c", str(concurrency), "-P", pool,
                          "--without-gossip", "--without-mingle", "--without-heartbeat", "-O", "fair",
                          "-l", "warning"], nice=nice)

    def start_bridge(self, name: str, role: str, priority: str = "normal", nice: int = 0) -> None:
        self.spawn(name, [sys.executable, "manage.py", "run_bridge", "--role", role, "--priority", priority],
                   nice=nice)

    def start_pipeline(self, send_workers: int = 1, send_concurrency: int = 8, send_bridges: int = 1,
                       priorities: tuple[str, ...] = ("normal",), high_concurrency: int = 16,
                       nice_bulk: int = 0) -> None:
        """Each priority gets its own send bridge(s) and worker(s); high also dispatches on its own worker.

        `nice_bulk` lowers the CPU priority of normal/low-priority processes, so that on a shared host
        an OTP's few milliseconds of work are not queued behind a blast's.
        """
        self.start_worker("worker-dispatch", [queues.DISPATCH], 2, nice=nice_bulk)
        self.start_worker("worker-callbacks", [queues.CALLBACKS], 4, pool="threads")
        for priority in priorities:
            if priority == "high":
                # Threads, not prefork: under a blast, the prefork parent handing tasks to its children
                # became the bottleneck (OTPs queued for seconds while children sat idle). These tasks
                # mostly wait on PostgreSQL, Redis and the provider, so threads serve them well.
                self.start_worker("worker-high", [queues.dispatch_queue("high"), queues.send_queue("high")],
                                  high_concurrency, pool="threads")
                continue
            send_queues = [queues.send_queue(priority)]
            if priority == "normal" or "normal" not in priorities:
                send_queues.append(queues.RETRY)
            for index in range(send_workers):
                self.start_worker(f"worker-send-{priority}-{index}", send_queues, send_concurrency, nice=nice_bulk)
        self.start_bridge("bridge-events", "events")
        self.start_bridge("bridge-retry", "retry", nice=nice_bulk)
        self.start_bridge("bridge-deferred", "deferred", nice=nice_bulk)
        for priority in priorities:
            for index in range(send_bridges):
                self.start_bridge(f"bridge-send-{priority}-{index}", "send", priority,
                                  nice=0 if priority == "high" else nice_bulk)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        with self._lock:
            process = self.processes.pop(name)
            self._commands.pop(name, None)
        os.killpg(process.pid, sig)
        process.wait(10)

    def stop(self, keep: tuple[str, ...] = ()) -> None:
        """Stop every process but those named in `keep` (the broker, while topics are deleted)."""
        self._supervising = False
        with self._lock:
            self._commands.clear()
        stopping = {name: process for name, process in self.processes.items() if name not in keep}
        for process in stopping.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for name, process in stopping.items():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            del self.processes[name]
        if not keep:
            for directory in self._temp_dirs:
                shutil.rmtree(directory, ignore_errors=True)
            self._temp_dirs.clear()


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process, in MB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids += process_tree(int(child))
    return pids


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / _TICKS


def cpu_by_command(names: tuple[str, ...] = ("postgres", "redis-server")) -> dict[str, float]:
    """CPU seconds of every process whose command name starts with one of `names` (services we do not start)."""
    totals = dict.fromkeys(names, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        for name in names:
            if comm.startswith(name[:15]):
                totals[name] += cpu_seconds(int(entry.name))
    return totals
