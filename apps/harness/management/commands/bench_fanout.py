import json

from django.core.management.base import BaseCommand, CommandError

from apps.harness.benchmark import BenchOptions, run
from apps.harness.device_profiles import DEFAULT_PROFILE, PROFILES
from apps.harness.fake_server import Faults

FAULTS = ("5xx", "429", "timeout", "invalid")
PROVIDERS = ("fake", "fcm", "apns", "email")  # webpush: not yet, see the README


class Command(BaseCommand):
    help = "Fire a goal alert to N fans through the real pipeline; the last line is a JSON report."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100_000)
        parser.add_argument("--topic", default="",
                            help="default: bench-<users>-realistic (bench-<users> for --devices single), "
                                 "seeded with exactly N fans")
        parser.add_argument("--devices", choices=PROFILES, default=DEFAULT_PROFILE,
                            help="device profile of the seeded fans (see seed_audience)")
        parser.add_argument("--provider", choices=PROVIDERS, default="fake",
                            help="fake: the fake provider, 500 tokens a request; fcm, apns, email: that "
                                 "real adapter against a local server speaking its protocol (every push device "
                                 "goes through it; email goes to the fans' addresses)")
        parser.add_argument("--provider-latency-ms", type=float, default=0.0)
        parser.add_argument("--send-workers", type=int, default=1, help="Celery worker processes for sending")
        parser.add_argument("--concurrency", type=int, default=8, help="prefork children per send worker")
        parser.add_argument("--send-bridges", type=int, default=1)
        parser.add_argument("--timeout", type=float, default=900.0)
        parser.add_argument("--keep-records", action="store_true", help="keep the delivery rows afterwards")
        for fault in FAULTS:
            parser.add_argument(f"--fail-{fault}", type=float, default=0.0, metavar="SHARE",
                                help=f"share (0-1) of provider answers that are {fault}")

    def handle(self, *args, **o):
        if o["users"] < 1:
            raise CommandError("--users must be at least 1")
        if o["provider_latency_ms"] < 0:
            raise CommandError("--provider-latency-ms must be >= 0")
        shares = {fault: o[f"fail_{fault}"] for fault in FAULTS}
        for fault, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise CommandError(f"--fail-{fault} must be a share between 0 and 1, not {share}")
        if shares["5xx"] + shares["429"] + shares["timeout"] > 1.0:
            raise CommandError("--fail-5xx, --fail-429 and --fail-timeout add up to more than 1")
        if o["provider"] != "fake" and any(shares.values()):
            raise CommandError("--fail-* faults are injected by the fake provider only (--provider fake)")
        faults = Faults(**{f"fail_{fault}": share for fault, share in shares.items()}) if any(shares.values()) else None
        options = BenchOptions(faults=faults, provider=o["provider"], users=o["users"], topic=o["topic"],
                               devices=o["devices"], provider_latency_ms=o["provider_latency_ms"],
                               send_workers=o["send_workers"], concurrency=o["concurrency"],
                               send_bridges=o["send_bridges"], timeout=o["timeout"], keep_records=o["keep_records"])
        try:
            report = run(options)
        except (TimeoutError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(report))
