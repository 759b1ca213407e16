import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")

app = Celery("notifications")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _serve_metrics(**kwargs) -> None:  # noqa: ANN003
    """METRICS_PORT: the worker's main process serves its children's metrics (docker-compose sets it)."""
    port = os.environ.get("METRICS_PORT")
    if port:
        from apps.monitoring.metrics import serve_metrics

        serve_metrics(int(port))
