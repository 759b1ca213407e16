import logging
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")

app = Celery("notifications")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _serve_metrics_and_wait(sender=None, **kwargs) -> None:  # noqa: ANN001, ANN003
    """METRICS_PORT: the worker's main process serves its children's metrics and its readiness (docker-compose
    sets it). Then, before it consumes, it waits for PostgreSQL and Redis if they are down, rather than exit."""
    port = os.environ.get("METRICS_PORT")
    if port:
        from apps.monitoring.process_server import serve_metrics

        serve_metrics(int(port))
    from django.conf import settings

    from apps.monitoring.readiness import wait_for

    from .credentials import not_configured

    name = f"worker {getattr(sender, 'hostname', '')}".strip()
    idle = not_configured({key: getattr(settings, key) for key in dir(settings) if key.isupper()})
    if idle and not settings.DEVELOPMENT:
        logging.getLogger(__name__).warning("%s: providers not configured, their recipients fail: %s", name,
                                            "; ".join(idle))
    wait_for(["postgres", "redis"], name)
    from apps.core.garbage_collector import tune_for_pipeline

    tune_for_pipeline()

