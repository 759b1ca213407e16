from django.core.management.base import BaseCommand

from apps.campaigns.groups import ensure_groups


class Command(BaseCommand):
    help = 'Create or update the "Marketer" and "Sender" admin groups (migrate does this too).'

    def handle(self, *args: object, **options: object) -> None:
        for name, count in ensure_groups().items():
            self.stdout.write(f"{name}: {count} permissions")
