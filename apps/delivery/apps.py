from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "apps.delivery"
    label = "delivery"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from . import signals  # noqa: F401
        from .db_priority import renice_backend

        connection_created.connect(renice_backend)
