from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "apps.receipts"
    label = "receipts"
    verbose_name = "receipts and suppressions"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.db.models.signals import pre_delete

        from apps.audience.models import Recipient
        from apps.delivery.signals import addresses_refused

        from .email_webhooks import on_tracking
        from .forget import forget_recipient
        from .suppressions import suppress_invalid

        tracking.connect(on_tracking, dispatch_uid="receipts-anymail-tracking")
        addresses_refused.connect(suppress_invalid, dispatch_uid="receipts-suppress-refused")
        pre_delete.connect(forget_recipient, sender=Recipient, dispatch_uid="receipts-forget-recipient")
