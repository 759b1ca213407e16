from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.providers import registry

        from .transport import InAppTransport

        registry.register("in_app", "", InAppTransport)
