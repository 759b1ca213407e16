import secrets

from django.core.management.base import BaseCommand, CommandError

from apps.delivery.models import ApiKey


class Command(BaseCommand):
    help = "Create an HTTP API token; it is printed once and only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"an API key named {name!r} exists already")
        token = secrets.token_urlsafe(32)
        ApiKey.objects.create(name=name, token_sha256=ApiKey.hash(token))
        self.stdout.write(token)
