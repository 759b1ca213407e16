import json

from django.core.management.base import BaseCommand, CommandError

from apps.harness.bench_priority import PriorityBenchOptions, run
from apps.harness.device_profiles import DEFAULT_PROFILE, PROFILES


class Command(BaseCommand):
    help = ("A low-priority blast to N users with OTPs (high priority) at a steady rate meanwhile; "
            "the last line is a JSON report with the OTPs' latency percentiles, with and without the blast.")

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=2_500_000)
        parser.add_argument("--devices", choices=PROFILES, default=DEFAULT_PROFILE,
                            help="device profile of the blast's seeded audience (see seed_audience)")
        parser.add_argument("--otp-rate", type=float, default=20.0, help="OTPs per second")
        parser.add_argument("--baseline-otps", type=int, default=100, help="OTPs measured before the blast")
        parser.add_argument("--concurrency", type=int, default=8, help="prefork children of the low-priority worker")
        parser.add_argument("--nice-bulk", type=int, default=10,
                            help="CPU niceness of the blast's processes (0: same as the OTP path)")
        parser.add_argument("--timeout", type=float, default=900.0)

    def handle(self, *args, **o):
        if o["users"] < 1 or o["otp_rate"] <= 0 or o["baseline_otps"] < 1:
            raise CommandError("--users, --otp-rate and --baseline-otps must be positive")
        if not 0 <= o["nice_bulk"] <= 19:
            raise CommandError("--nice-bulk must be between 0 and 19")
        options = PriorityBenchOptions(users=o["users"], devices=o["devices"], otp_rate=o["otp_rate"],
                                       baseline_otps=o["baseline_otps"],
                                       concurrency=o["concurrency"], nice_bulk=o["nice_bulk"], timeout=o["timeout"])
        try:
            report = run(options)
        except (TimeoutError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(report))
