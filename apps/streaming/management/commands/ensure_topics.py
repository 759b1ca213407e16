from django.core.management.base import BaseCommand, CommandError

from apps.core.outages import BrokerUnavailable
from apps.streaming.client import ensure_topics
from apps.streaming.topics import all_topics


class Command(BaseCommand):
    help = "Create every topic the platform uses, with its partition count (idempotent)."

    def handle(self, *args, **options):
        try:
            created = ensure_topics()
        except (BrokerUnavailable, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{len(all_topics())} topics present, {len(created)} created")
