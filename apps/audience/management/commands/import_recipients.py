"""manage.py import_recipients FILE: a bulk import of recipients (CSV or JSON lines), streamed through
COPY; a progress bar (bytes read) on stderr, the report as one JSON object on stdout, and every rejected
line with --rejects PATH (CSV: line, field, reason)."""

import csv
import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.audience.bulk_import import FORMATS, LISTED_REJECTS, ImportRefused, import_recipients
from apps.core.progress_bar import ProgressBar


class Command(BaseCommand):
    help = "Import recipients from a CSV (with a header) or JSON-lines file, upserting by external_id."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path", help="the file, or - for standard input")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file's extension (.csv, .jsonl)")
        parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4),
                            help="processes checking rows (default: the CPUs, at most 4)")
        parser.add_argument("--rejects", help="write every rejected line's number and reason to this CSV file")

    def handle(self, path: str, format: str | None, workers: int, rejects: str | None, **options) -> None:  # noqa: A002, ANN003
        fmt = format or ("jsonl" if path.endswith((".jsonl", ".ndjson")) else "csv")
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        total = None if path == "-" else os.fstat(stream.fileno()).st_size
        try:
            with ProgressBar("importing", total, "B") as bar:
                report = import_recipients(stream, fmt, workers=max(workers, 1), progress=bar.set)
                bar.set(total or bar.n)
        except ImportRefused as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        finally:
            stream.close()
        result = report.as_dict()
        if rejects:
            with open(rejects, "w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["line", "field", "reason"])
                writer.writerows([r["line"], r["field"], r["reason"]] for r in result["rejects"])
            if report.rejected > LISTED_REJECTS:
                self.stderr.write(f"{report.rejected} lines rejected; the first {LISTED_REJECTS} are in {rejects}")
        self.stdout.write(json.dumps({k: v for k, v in result.items() if k != "rejects"} |
                                     {"rejects": result["rejects"][:20]}))
