from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "apps.callbacks"
    label = "callbacks"
    verbose_name = "status callbacks"

    def ready(self) -> None:
        from apps.delivery.signals import notification_completed, recipient_erased

        from .erasure import scrub_callback_messages
        from .hooks import on_notification_completed

        notification_completed.connect(on_notification_completed, dispatch_uid="callbacks-completed")
        recipient_erased.connect(scrub_callback_messages, dispatch_uid="callbacks-erasure")
