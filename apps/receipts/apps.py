from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "apps.receipts"
    label = "receipts"
    verbose_name = "receipts and suppressions"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .email_webhooks import on_tracking

        tracking.connect(on_tracking, dispatch_uid="receipts-anymail-tracking")
