from django.core.management.base import BaseCommand

from apps.harness.fake_server import serve


class Command(BaseCommand):
    help = "Run the fake push provider (HTTP on 127.0.0.1) for local runs and benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8910)
        parser.add_argument("--latency-ms", type=float, default=0.0, help="hold each answer this long")

    def handle(self, *args, port, latency_ms, **options):
        self.stdout.write(f"fake provider on http://127.0.0.1:{port} (latency {latency_ms} ms)")
        serve("127.0.0.1", port, latency_ms)
