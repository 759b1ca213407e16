import json

from django.core.management.base import BaseCommand, CommandError

from apps.harness.chaos.runner import ChaosOptions, run
from apps.harness.chaos.scenarios import SCENARIOS


class Command(BaseCommand):
    help = ("Run the reliability scenarios (crashes, provider faults, poison messages, dependency restarts, beat) "
            "on the real stack, each with a fan-out to N fans. The last line is one JSON object: "
            '{"scenarios": {name: {"recipients", "missing", "duplicates", "dead_lettered", ...}}, '
            '"missing": total, "duplicates": total}. Exits 1 if anything is missing.')

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100_000, help="fans per scenario (at least 1000)")
        parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                            help=f"comma-separated, from: {', '.join(SCENARIOS)}")
        parser.add_argument("--seed", type=int, default=None, help="fixes the random kill points")
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds any one wait may take")

    def handle(self, *args, users, scenarios, seed, timeout, **options):
        names = [name.strip() for name in scenarios.split(",") if name.strip()]
        try:
            report = run(ChaosOptions(users=users, scenarios=names, seed=seed, timeout=timeout), show_progress=True)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(report))
        if report["missing"]:
            raise CommandError(f"{report['missing']} recipient(s) missing")
