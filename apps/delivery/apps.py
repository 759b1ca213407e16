from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "apps.delivery"
    label = "delivery"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.core.db_priority import renice_backend

        from . import signals  # noqa: F401

        connection_created.connect(renice_backend)
