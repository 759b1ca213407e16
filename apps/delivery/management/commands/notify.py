import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.outages import BrokerUnavailable
from apps.delivery.models import Source
from apps.delivery.service import notify


class Command(BaseCommand):
    help = "Send a notification, e.g. notify --category goal-alerts --topic arsenal --channels push --title GOAL!"

    def add_arguments(self, parser):
        parser.add_argument("--category", required=True)
        audience = parser.add_mutually_exclusive_group(required=True)
        audience.add_argument("--topic")
        audience.add_argument("--recipients", help="comma-separated recipient ids")
        audience.add_argument("--all", action="store_true")
        parser.add_argument("--channels", default="push")
        parser.add_argument("--title", default="")
        parser.add_argument("--body", default="")
        parser.add_argument("--context", default="{}", help="JSON object for the template")
        parser.add_argument("--idempotency-key")

    def handle(self, *args, **o):
        if o["topic"]:
            audience = {"topic": o["topic"]}
        elif o["recipients"]:
            try:
                audience = {"recipients": [int(r) for r in o["recipients"].split(",")]}
            except ValueError:
                raise CommandError("--recipients: expected comma-separated integers") from None
        else:
            audience = {"all": True}
        try:
            context = json.loads(o["context"])
            notification = notify(category=o["category"], audience=audience, channels=o["channels"].split(","),
                                  title=o["title"], body=o["body"], context=context,
                                  idempotency_key=o["idempotency_key"], source=Source.COMMAND)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except (BrokerUnavailable, RuntimeError) as exc:
            raise CommandError(f"not published: {exc}") from None
        self.stdout.write(f"notification {notification.pk} ({notification.status})")
