import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError

from apps.core.progress_bar import ProgressBar
from apps.harness.device_profiles import DEFAULT_PROFILE, PROFILES
from apps.harness.seeding import seed_audience


def positive_int(value: str) -> int:
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {number}")
    return number


class Command(BaseCommand):
    help = "Create N synthetic recipients with devices, contact points, preferences, following a topic."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=positive_int, required=True)
        parser.add_argument("--topic", default="home-team", help="slug of the topic the fans follow")
        parser.add_argument("--devices", choices=PROFILES, default=DEFAULT_PROFILE,
                            help="device profile: realistic (1-3 devices a user, FCM/APNs/Web Push tokens of "
                                 "real size) or single (one 32-character fake token a user)")

    def handle(self, *args, users, topic, devices, **options):
        if not topic.strip():
            raise CommandError("--topic must not be empty")
        started = time.monotonic()
        try:
            with ProgressBar("seeding", users, "users") as bar:
                result = seed_audience(users, topic, devices, on_chunk=bar.advance)
        except OperationalError as exc:
            raise CommandError(f"database error: {str(exc).strip().splitlines()[0]}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"seeded {users} fans of '{result.topic.slug}' ({devices} devices): {result.recipients_created} "
            f"recipients and {result.follows_created} follows created in {time.monotonic() - started:.1f}s"
        )
