import math
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.outages import BrokerUnavailable
from apps.streaming.lag import GroupNotFound, group_lag
from apps.streaming.topics import bridge_groups


class Command(BaseCommand):
    help = "Consumer lag per group, topic and partition; --advise says how many consumers and workers drain it."

    def add_arguments(self, parser):
        parser.add_argument("--group", help="one group (default: every bridge group that exists)")
        parser.add_argument("--topic", action="append", help="with --group: its topics (default: the bridge's)")
        parser.add_argument("--all-partitions", action="store_true", help="list partitions with no lag too")
        parser.add_argument("--advise", action="store_true")
        parser.add_argument("--target-seconds", type=float, default=10.0, help="drain the lag within this long")
        parser.add_argument("--consumer-rate", type=float, default=200.0,
                            help="messages a second one bridge consumer hands on (measured: see README)")
        parser.add_argument("--worker-rate", type=float, default=18_000.0,
                            help="recipients a second one send worker process (8 children) records")

    def handle(self, *args, group, topic, all_partitions, advise, target_seconds, consumer_rate, worker_rate,
               **options):
        if target_seconds <= 0 or consumer_rate <= 0 or worker_rate <= 0:
            raise CommandError("--target-seconds, --consumer-rate and --worker-rate must be positive")
        known = bridge_groups()
        try:
            if group:
                topics = topic or known.get(group)
                if not topics:
                    raise CommandError(f"give --topic for group {group!r} (not a bridge group)")
                wanted = {group: topics}
            else:
                wanted = known
            results = {}
            for name, topics_of_group in wanted.items():
                try:
                    results[name] = group_lag(name, topics_of_group)
                except GroupNotFound as exc:
                    if group:
                        raise CommandError(str(exc)) from None
            if not results:
                raise CommandError("no bridge consumer group has committed yet (is a bridge running?)")
        except BrokerUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'group':<32} {'topic':<32} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
        for name, rows in results.items():
            for row in rows:
                if row.lag or all_partitions:
                    self.stdout.write(f"{name:<32} {row.topic:<32} {row.partition:>4} {row.committed:>10} "
                                      f"{row.end:>10} {row.lag:>8}")
            self.stdout.write(f"{name:<32} {'(total)':<32} {'':>4} {'':>10} {'':>10} {sum(r.lag for r in rows):>8}")
        if advise:
            for name, rows in results.items():
                self.stdout.write(self._advice(name, rows, target_seconds, consumer_rate, worker_rate))

    def _advice(self, name: str, rows: list, target: float, consumer_rate: float, worker_rate: float) -> str:
        lag = sum(r.lag for r in rows)
        # A group's consumers split each topic's partitions, so more than one topic's count would idle.
        per_topic = max(Counter(r.topic for r in rows).values(), default=1)
        consumers = min(max(math.ceil(lag / (target * consumer_rate)), 1), per_topic)
        advice = f"{name}: lag {lag} message(s): {consumers} consumer(s) (at most {per_topic}, the partition count)"
        if ".send." in name or name.endswith("bridge.retry"):
            recipients = lag * settings.DISPATCH_BATCH_SIZE
            workers = max(math.ceil(recipients / (target * worker_rate)), 1)
            advice += f", up to {recipients} recipient(s): {workers} send worker process(es)"
        return advice + f" to drain within {target:g}s"
