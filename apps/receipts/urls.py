from django.urls import path

from . import email_webhooks, sms_webhooks

app_name = "receipts"
urlpatterns = [
    *(path(f"receipts/anymail/{esp}/tracking/", email_webhooks.tracking_view(esp), name=f"{esp}-tracking")
      for esp in email_webhooks.ESP_VIEWS),
    path("receipts/twilio/status", sms_webhooks.status_callback, name="twilio-status"),
    path("receipts/twilio/inbound", sms_webhooks.inbound_message, name="twilio-inbound"),
]
