from django.urls import path

from . import views

urlpatterns = [
    path("notifications", views.create_notification, name="api-create-notification"),
    path("notifications/<int:notification_id>", views.notification_status, name="api-notification-status"),
    path("recipients/<str:external_id>/token", views.recipient_token, name="api-recipient-token"),
    path("recipients/<str:external_id>/deliveries", views.recipient_deliveries, name="api-recipient-deliveries"),
]
