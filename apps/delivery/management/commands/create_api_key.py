import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.delivery.models import AUDIENCE_KINDS, ApiKey, ApiScope
from apps.preferences.models import Category


class Command(BaseCommand):
    help = ("Create an HTTP API key with its scopes and limits; its secret is printed once and only its hash "
            "is stored. Example: create_api_key shop --owner payments-team --scope send --scope read_status "
            "--category security --audience-kind recipients --max-audience 1")

    def add_arguments(self, parser):  # noqa: ANN001, ANN201
        parser.add_argument("name")
        parser.add_argument("--owner", default="", help="the team or person responsible")
        parser.add_argument("--scope", action="append", required=True, choices=[*ApiScope.values, "all"],
                            help="repeat for several; 'all' for every scope")
        parser.add_argument("--category", action="append", default=[], help="allowed category slug (repeatable)")
        parser.add_argument("--audience-kind", action="append", default=[], choices=AUDIENCE_KINDS)
        parser.add_argument("--max-audience", type=int, help="largest audience one request may target")
        parser.add_argument("--rate-per-minute", type=int,
                            help="requests a minute (default: NOTIFY_API_RATE_PER_MINUTE)")

    def handle(self, *args, name, owner, scope, category, audience_kind, max_audience, rate_per_minute,  # noqa: ANN001, ANN002, ANN003, ANN201
               **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"an API key named {name!r} exists already")
        categories = list(Category.objects.filter(slug__in=category))
        missing = sorted(set(category) - {c.slug for c in categories})
        if missing:
            raise CommandError(f"unknown category {missing[0]!r}")
        for number, label in ((max_audience, "--max-audience"), (rate_per_minute, "--rate-per-minute")):
            if number is not None and number < 0:
                raise CommandError(f"{label} must be 0 or more")
        token = secrets.token_urlsafe(32)
        with transaction.atomic():
            api_key = ApiKey.objects.create(
                name=name, owner=owner, token_sha256=ApiKey.hash(token),
                scopes=list(ApiScope.values) if "all" in scope else list(dict.fromkeys(scope)),
                allowed_audience_kinds=list(dict.fromkeys(audience_kind)), max_audience=max_audience,
                rate_per_minute=rate_per_minute)
            api_key.allowed_categories.set(categories)
        self.stdout.write(token)
