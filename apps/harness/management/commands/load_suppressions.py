from django.core.management.base import BaseCommand

from apps.core.channels import Channel
from apps.harness.suppression_loading import remove_loaded, suppress_share


class Command(BaseCommand):
    help = ("Suppress every N-th follower of a topic on a channel (benchmark data: bench_fanout with suppressions "
            "loaded), or --remove what this command loaded.")

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--topic", default="bench-100000-realistic", help="bench_fanout's: bench-<users>-<devices>")
        parser.add_argument("--channel", choices=Channel.values, default="push")
        parser.add_argument("--every", type=int, default=10, help="10: 10%% of the followers")
        parser.add_argument("--remove", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        if options["remove"]:
            self.stdout.write(f"removed {remove_loaded(options['channel'])} loaded suppressions")
            return
        added = suppress_share(options["topic"], options["channel"], options["every"])
        self.stdout.write(f"suppressed {added} followers of {options['topic']} on {options['channel']}")
