import sys

from django.core.management.base import BaseCommand, CommandError

from apps.core.progress_bar import ProgressBar
from apps.delivery.models import DeadLetter
from apps.delivery.replay import NotReplayable, replay


class Command(BaseCommand):
    help = ("Resend the recipients of dead letters (never one already sent). Give ids, or --all for every "
            "letter not replayed yet, optionally of one --notification.")

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="dead letter ids")
        parser.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
        parser.add_argument("--notification", type=int, help="with --all: only this notification's letters")

    def handle(self, *args, ids, all, notification, **options):
        if bool(ids) == bool(all):
            raise CommandError("give dead letter ids, or --all")
        if ids:
            letters = list(DeadLetter.objects.filter(pk__in=ids).order_by("pk"))
            missing = sorted(set(ids) - {letter.pk for letter in letters})
            if missing:
                raise CommandError(f"no dead letter with id {', '.join(map(str, missing))}")
        else:
            query = DeadLetter.objects.filter(replayed_at__isnull=True)
            if notification:
                query = query.filter(notification_id=notification)
            letters = list(query.order_by("pk"))
        queued, refused = 0, 0
        with ProgressBar("replaying", len(letters), "letters", file=sys.stderr) as bar:
            for letter in letters:
                try:
                    queued += replay(letter)
                except NotReplayable as exc:
                    refused += 1
                    bar.write(str(exc))
                bar.advance()
        self.stdout.write(f"replayed {len(letters) - refused} dead letter(s): {queued} recipient(s) queued, "
                          f"{refused} not replayable")
        if refused and refused == len(letters):
            raise CommandError("nothing was replayable")
