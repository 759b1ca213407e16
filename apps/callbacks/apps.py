from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "apps.callbacks"
    label = "callbacks"
    verbose_name = "status callbacks"

    def ready(self) -> None:
        from apps.delivery.signals import notification_completed

        from .hooks import on_notification_completed

        notification_completed.connect(on_notification_completed, dispatch_uid="callbacks-completed")
