"""manage.py event_source: register and manage the services that publish raw events to notify.events.

    event_source create orders --owner team-orders --category order-updates   # prints the signing key once
    event_source list [--json]
    event_source limits orders --audience-kind recipients --audience-kind topic --max-audience 500
    event_source deactivate orders | activate orders

Least privilege: a new source is signed (its key is generated and printed once on stdout; without a key,
anyone who can write the topic could speak for it, so unsigned needs --unsigned), may send only the
categories named (--category, or --any-category said outright), only to a list of recipient ids
(--audience-kind to widen, --any-audience-kind for every kind) of at most 1 recipient (--max-audience N,
or --no-max-audience). The same allow-lists as an API key's, checked by apps/delivery/allow_lists.py.
"""

from __future__ import annotations

import json
import secrets
from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.delivery.models import AUDIENCE_KINDS, EventSource
from apps.preferences.models import Category

DEFAULT_AUDIENCE_KINDS = ["recipients"]
DEFAULT_MAX_AUDIENCE = 1


def _limit_arguments(parser: ArgumentParser, creating: bool) -> None:
    categories = parser.add_mutually_exclusive_group()
    categories.add_argument("--category", action="append", default=None, metavar="SLUG",
                            help="a category it may send (repeatable; replaces the list)")
    categories.add_argument("--any-category", action="store_true", help="any category (an empty allow-list)")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--audience-kind", action="append", default=None, choices=AUDIENCE_KINDS,
                       help="a kind of audience it may target (repeatable; replaces the list)"
                            + (f"; default: {', '.join(DEFAULT_AUDIENCE_KINDS)}" if creating else ""))
    kinds.add_argument("--any-audience-kind", action="store_true", help="any kind of audience")
    largest = parser.add_mutually_exclusive_group()
    largest.add_argument("--max-audience", type=int, metavar="N", help="largest audience one event may target"
                         + (f"; default: {DEFAULT_MAX_AUDIENCE}" if creating else ""))
    largest.add_argument("--no-max-audience", action="store_true", help="no largest audience")


class Command(BaseCommand):
    help = ("Manage event sources (the services publishing raw events): create (printing its signing key "
            "once), list, limits (set its allow-lists), deactivate, activate.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,limits,deactivate,"
                                                                             "activate}")
        create = actions.add_parser("create", help="register a source; prints its signing key once")
        create.add_argument("name", help='the value of "source" in its events')
        create.add_argument("--owner", default="", help="the team or person responsible")
        create.add_argument("--unsigned", action="store_true",
                            help="no signing key: anyone who can write notify.events may speak for it")
        _limit_arguments(create, creating=True)
        listing = actions.add_parser("list", help="every source and its limits (never its key)")
        listing.add_argument("--json", action="store_true", dest="as_json", help="one JSON object a line")
        limits = actions.add_parser("limits", help="set a source's allow-lists (only the options given change)")
        limits.add_argument("name")
        _limit_arguments(limits, creating=False)
        for action, words in (("deactivate", "its events are dead-lettered from now on"),
                              ("activate", "its events are accepted again")):
            actions.add_parser(action, help=words).add_argument("name")

    def handle(self, *args: object, action: str, **options: object) -> None:
        handler = {"create": self.create, "list": self.list, "limits": self.limits,
                   "deactivate": self.deactivate, "activate": self.activate}[action]
        handler(**options)

    def create(self, *, name: str, owner: str, unsigned: bool, **options: object) -> None:
        if not options["category"] and not options["any_category"]:
            raise CommandError("name the categories it may send (--category SLUG, repeatable), or --any-category")
        source = EventSource(name=name, owner=owner, signing_key="" if unsigned else secrets.token_hex(32),
                             allowed_audience_kinds=list(DEFAULT_AUDIENCE_KINDS), max_audience=DEFAULT_MAX_AUDIENCE)
        with transaction.atomic():
            categories = self._apply_limits(source, options)
            self._save(source)
            source.allowed_categories.set(categories or [])
        self.stderr.write(f"created event source {describe(source)}")
        if source.signing_key:
            self.stderr.write("its signing key (HMAC-SHA256 of each event's body, in the 'signature' header) is "
                              "printed below, once: store it with the service")
            self.stdout.write(source.signing_key)

    def list(self, *, as_json: bool, **options: object) -> None:
        for source in EventSource.objects.order_by("name").prefetch_related("allowed_categories"):
            self.stdout.write(json.dumps(as_dict(source)) if as_json else describe(source))

    def limits(self, *, name: str, **options: object) -> None:
        source = _named(name)
        if not any(options[key] not in (None, False) for key in ("category", "any_category", "audience_kind",
                                                                  "any_audience_kind", "max_audience",
                                                                  "no_max_audience")):
            raise CommandError("nothing to change: give --category, --audience-kind or --max-audience (or --any-*)")
        with transaction.atomic():
            categories = self._apply_limits(source, options)
            self._save(source)
            if categories is not None:
                source.allowed_categories.set(categories)
        self.stdout.write(f"limits of {describe(source)}")

    def deactivate(self, *, name: str, **options: object) -> None:
        self._set_active(name, False)

    def activate(self, *, name: str, **options: object) -> None:
        self._set_active(name, True)

    def _set_active(self, name: str, active: bool) -> None:
        source = _named(name)
        source.is_active = active
        source.save(update_fields=["is_active"])
        self.stdout.write(f"event source {name!r} {'activated' if active else 'deactivated'}")

    @staticmethod
    def _apply_limits(source: EventSource, options: dict) -> list[Category] | None:
        """Set the given allow-lists on `source` (unsaved); returns the categories to set, None to keep them."""
        if options["audience_kind"]:
            source.allowed_audience_kinds = list(dict.fromkeys(options["audience_kind"]))
        elif options["any_audience_kind"]:
            source.allowed_audience_kinds = []
        if options["max_audience"] is not None:
            if options["max_audience"] < 1:
                raise CommandError("--max-audience must be 1 or more (deactivate a source to stop it)")
            source.max_audience = options["max_audience"]
        elif options["no_max_audience"]:
            source.max_audience = None
        if options["any_category"]:
            return []
        if not options["category"]:
            return None
        wanted = list(dict.fromkeys(options["category"]))
        categories = list(Category.objects.filter(slug__in=wanted))
        missing = [slug for slug in wanted if slug not in {c.slug for c in categories}]
        if missing:
            raise CommandError(f"unknown category {missing[0]!r}")
        return categories

    @staticmethod
    def _save(source: EventSource) -> None:
        try:
            source.full_clean()
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise CommandError(f"{field}: {' '.join(messages)}") from None
        source.save()


def _named(name: str) -> EventSource:
    source = EventSource.objects.filter(name=name).first()
    if source is None:
        raise CommandError(f"no event source named {name[:64]!r}")
    return source


def as_dict(source: EventSource) -> dict:
    return {"name": source.name, "owner": source.owner, "is_active": source.is_active,
            "categories": sorted(c.slug for c in source.allowed_categories.all()),
            "audience_kinds": source.allowed_audience_kinds, "max_audience": source.max_audience,
            "signed": bool(source.signing_key)}


def describe(source: EventSource) -> str:
    """One line of what a source may do; never its key."""
    data = as_dict(source)
    return (f"{data['name']!r} (owner {data['owner'] or '-'}, {'active' if data['is_active'] else 'INACTIVE'}, "
            f"{'signed' if data['signed'] else 'UNSIGNED'}): categories {', '.join(data['categories']) or 'any'}; "
            f"audience kinds {', '.join(data['audience_kinds']) or 'any'}; "
            f"largest audience {data['max_audience'] if data['max_audience'] is not None else 'unlimited'}")

