"""The task celery beat fires for a scheduled campaign (django-celery-beat PeriodicTask "campaign <id>")."""

from celery import shared_task

from . import service


@shared_task(name=service.LAUNCH_TASK, acks_late=True)
def launch_campaign(campaign_id: int) -> int | None:
    notification = service.launch(campaign_id)
    return notification.pk if notification else None
