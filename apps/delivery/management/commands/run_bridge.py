import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from apps.delivery.bridge import handle_batches, handle_events
from apps.preferences.models import Channel, Priority
from apps.streaming.client import BrokerUnavailable, ConsumerOptions, check_broker, ensure_topics, run_consumer
from apps.streaming.topics import EVENTS, channel_topic, topic_name

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Run the Kafka-to-Celery bridge. --role events consumes notify.events; --role send consumes the "
            "recipient-batch topics of one priority. Run several side by side: they split the partitions.")

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=["events", "send"], required=True)
        parser.add_argument("--priority", choices=Priority.values, default="normal")
        parser.add_argument("--channels", default=",".join(Channel.values), help="comma-separated, for --role send")
        parser.add_argument("--batch", type=int, default=50, help="messages handed off per commit")

    def handle(self, *args, role, priority, channels, batch, **options):
        try:
            check_broker()
            ensure_topics()
        except (BrokerUnavailable, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        from django.conf import settings

        if role == "events":
            group, topics, handler = "bridge.events", [topic_name(EVENTS)], handle_events
        else:
            wanted = [c.strip() for c in channels.split(",") if c.strip()]
            unknown = sorted(set(wanted) - set(Channel.values))
            if unknown:
                raise CommandError(f"unknown channel(s): {', '.join(unknown)}")
            group, topics, handler = f"bridge.send.{priority}", [channel_topic(c, priority) for c in wanted], \
                handle_batches
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        options_ = ConsumerOptions(group_id=f"{settings.KAFKA_TOPIC_PREFIX}{group}", topics=topics, batch_size=batch)
        self.stdout.write(f"bridge {group} consuming {len(topics)} topic(s)")
        try:
            run_consumer(options_, handler, should_stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            pass
