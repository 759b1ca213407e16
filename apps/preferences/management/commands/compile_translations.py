"""Compile every catalog under LOCALE_PATHS (locale/<lang>/LC_MESSAGES/django.po) into its .mo with Babel, in
Python: no GNU gettext needed (the slim production image has no msgfmt). bin/_setup.sh and the Dockerfile run it;
the .mo files are build output, never committed. A catalog with a broken entry stops the command, naming it."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def compile_catalog(po: Path) -> Path:
    with po.open("rb") as source:
        try:
            catalog = read_po(source, abort_invalid=True)
        except PoFileError as exc:
            raise CommandError(f"{po}: {exc}") from None
    problems = [f"{po}: {message.id!r}: {errors[0]}" for message, errors in catalog.check()]
    if problems:
        raise CommandError("\n".join(problems))
    mo = po.with_suffix(".mo")
    with mo.open("wb") as target:
        write_mo(target, catalog, use_fuzzy=False)  # a fuzzy (unchecked) translation stays English
    return mo


class Command(BaseCommand):
    help = "Compile the translation catalogs (.po) under LOCALE_PATHS into .mo files, without GNU gettext."

    def handle(self, *args: object, **options: object) -> None:
        catalogs = sorted(po for root in settings.LOCALE_PATHS for po in Path(root).glob("*/LC_MESSAGES/*.po"))
        if not catalogs:
            raise CommandError(f"no catalogs under {', '.join(map(str, settings.LOCALE_PATHS))}")
        for po in catalogs:
            mo = compile_catalog(po)
            if int(options.get("verbosity", 1)) > 0:
                self.stdout.write(f"compiled {mo}")
