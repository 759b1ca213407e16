"""Progress bars of the long commands: tqdm on a terminal, plain lines elsewhere, stdout untouched."""

import io

import pytest
from django.core.management import call_command

from apps.core.progress_bar import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_with_rate_and_eta_when_not_a_terminal():
    out = io.StringIO()
    with ProgressBar("seeding", 1000, "users", file=out, interval=0.0) as bar:
        bar.advance(250)
        bar.write("a log line")
        bar.set(1000)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("seeding: 250/1,000 users (25%), ") and "users/s, ETA " in lines[0]
    assert lines[1] == "a log line"
    assert lines[-1].startswith("seeding: 1,000/1,000 users (100%)")


def test_total_learned_later_and_disabled_bar_writes_nothing():
    out = io.StringIO()
    with ProgressBar("recorded", unit="recipients", file=out, interval=0.0) as bar:
        bar.set(5)
        bar.set(10, total=40)
    first, *_, last = out.getvalue().splitlines()
    assert first.startswith("recorded: 5 recipients, ") and "ETA" not in first
    assert last.startswith("recorded: 10/40 recipients (25%)") and "ETA" in last
    quiet = io.StringIO()
    with ProgressBar("x", 3, file=quiet, enabled=False) as bar:
        bar.advance(3)
    assert quiet.getvalue() == ""


def test_tqdm_bar_on_a_terminal():
    out = Terminal()
    with ProgressBar("replaying", 4, "letters", file=out) as bar:
        bar.advance(4)
    text = out.getvalue()
    assert "\r" in text and "replaying" in text and "4/4" in text and "letters/s" in text


@pytest.mark.django_db(transaction=True)  # seeding threads commit on their own connections
def test_seed_command_stdout_unchanged_progress_on_stderr(capsys):
    call_command("seed_audience", "--users", "300", "--topic", "progress-bar")
    captured = capsys.readouterr()
    assert captured.out.startswith("seeded 300 fans of 'progress-bar'") and len(captured.out.splitlines()) == 1
    assert captured.err.splitlines()[-1].startswith("seeding: 300/300 users (100%)")
