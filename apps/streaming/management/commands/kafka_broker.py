import signal
import time

from django.core.management.base import BaseCommand, CommandError

from apps.streaming.client import ensure_topics
from apps.streaming.local_broker import bootstrap_file, start_tansu


class Command(BaseCommand):
    help = "Run the embedded Tansu broker on 127.0.0.1 (for local runs), create the topics, and wait."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="default: a free port")

    def handle(self, *args, port, **options):
        process, servers = start_tansu(port)
        path = bootstrap_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(servers)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            created = ensure_topics()
            self.stdout.write(f"Tansu broker at {servers}; created {len(created)} topic(s). Ctrl-C stops it.")
            while not stop and process.poll() is None:
                time.sleep(0.5)
            if process.poll() is not None:
                raise CommandError(f"Tansu exited with code {process.returncode}")
        except KeyboardInterrupt:
            pass
        finally:
            process.terminate()
            path.unlink(missing_ok=True)
