from django.core.management.base import BaseCommand, CommandError

from apps.monitoring.health import CHECKS


class Command(BaseCommand):
    help = ("Exit 0 if the named dependencies answer (2 s timeouts), else 1 naming what is down: the health "
            "check of a process with no port of its own (beat).")

    def add_arguments(self, parser):  # noqa: ANN001, ANN201
        parser.add_argument("dependencies", nargs="*",
                            help=f"from {', '.join(CHECKS)}; default: all of them")

    def handle(self, *args, dependencies: list[str], **options) -> None:  # noqa: ANN002, ANN003
        dependencies = dependencies or list(CHECKS)
        unknown = sorted(set(dependencies) - set(CHECKS))
        if unknown:
            raise CommandError(f"unknown dependency {unknown[0]!r}: choose from {', '.join(CHECKS)}")
        down = {name: reason for name in dependencies if (reason := CHECKS[name]())}
        if down:
            raise CommandError("down: " + ", ".join(f"{name} ({reason})" for name, reason in down.items()))
        self.stdout.write("up: " + ", ".join(dependencies))
