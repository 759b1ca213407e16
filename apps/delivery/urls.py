from django.urls import path, register_converter

from . import recipient_views, views


class ExternalIdConverter:
    """Any path segment but one holding NUL, which PostgreSQL text cannot hold: that is a 404, not a 500."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExternalIdConverter, "external_id")

urlpatterns = [
    path("notifications", views.create_notification, name="api-create-notification"),
    path("notifications/<int:notification_id>", views.notification_status, name="api-notification-status"),
    path("recipients/<external_id:external_id>", recipient_views.put_recipient, name="api-recipient"),
    path("recipients/<external_id:external_id>/token", recipient_views.recipient_token, name="api-recipient-token"),
    path("recipients/<external_id:external_id>/deliveries", recipient_views.recipient_deliveries,
         name="api-recipient-deliveries"),
]
