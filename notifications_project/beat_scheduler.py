"""Beat's scheduler: django-celery-beat's database scheduler, after PostgreSQL and Redis answer.

The scheduler reads its schedule from PostgreSQL as it is made, before any beat signal fires, so a beat
started while PostgreSQL is down would exit; this one waits (and says what for) instead."""

from django_celery_beat.schedulers import DatabaseScheduler as BaseDatabaseScheduler

from apps.monitoring.readiness import wait_for


class DatabaseScheduler(BaseDatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        wait_for(["postgres", "redis"], "beat")
        super().__init__(*args, **kwargs)
