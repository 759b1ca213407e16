from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from apps.delivery.service import notification_completed

        from .groups import ensure_groups
        from .members import register_member_lists
        from .service import on_campaign_deleted, on_notification_completed

        register_member_lists()
        notification_completed.connect(on_notification_completed, dispatch_uid="campaign-completed")
        post_migrate.connect(ensure_groups, dispatch_uid="campaign-groups")
        post_delete.connect(on_campaign_deleted, sender="campaigns.Campaign", dispatch_uid="campaign-deleted")
