import json

from django.core.management.base import BaseCommand, CommandError

from apps.harness.api_latency_bench import LatencyOptions, run


class Command(BaseCommand):
    help = ("Create-notification latency: POST /api/notifications at --rate requests/s against the web tier "
            "(started here as the README runs it, or --url); prints one JSON line with p50/p90/p99/max.")

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
        parser.add_argument("--requests", type=int, default=2000, help="measured requests, after the warm-up")
        parser.add_argument("--warmup", type=int, default=100)
        parser.add_argument("--workers", type=int, default=4, help="web workers (gunicorn -w; the README's: 4)")
        parser.add_argument("--pool-size", type=int, default=8,
                            help="DATABASE_POOL_SIZE of each web worker (the README's: 8; 0 for none)")
        parser.add_argument("--url", help="an already running web tier (with its broker) instead of starting one")

    def handle(self, *args, **o):
        if o["rate"] <= 0 or o["requests"] < 1 or o["warmup"] < 0 or o["workers"] < 1 or o["pool_size"] < 0:
            raise CommandError("--rate, --requests and --workers must be positive, --warmup not negative")
        options = LatencyOptions(rate=o["rate"], requests=o["requests"], warmup=o["warmup"], workers=o["workers"],
                                 pool_size=o["pool_size"], url=o["url"])
        try:
            report = run(options)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(report))
