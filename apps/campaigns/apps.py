from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from apps.delivery.signals import notification_completed

        from .service import on_notification_completed

        notification_completed.connect(on_notification_completed, dispatch_uid="campaign-completed")
