"""The campaigns app's own beat entries, kept in django-celery-beat's tables (the scheduler beat runs with),
made after every migrate like the admin groups, so a new database, and a test database after each flush, has them.
"""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .parts import SWEEP_TASK

SWEEP_ENTRY = "campaigns: release overdue waves"
SWEEP_EVERY_SECONDS = 60


def ensure_beat_entries(**kwargs: object) -> PeriodicTask:
    """The sweeper's entry, every minute on the dispatch queue; an operator's change of its interval stands."""
    every, _ = IntervalSchedule.objects.get_or_create(every=SWEEP_EVERY_SECONDS, period=IntervalSchedule.SECONDS)
    entry, _ = PeriodicTask.objects.get_or_create(
        name=SWEEP_ENTRY, defaults={"task": SWEEP_TASK, "interval": every, "queue": "dispatch", "enabled": True,
                                    "description": "Releases local-time waves whose release met an outage."})
    return entry
