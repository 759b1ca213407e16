from django.apps import AppConfig


class HarnessConfig(AppConfig):
    name = "apps.harness"
    verbose_name = "Development harness"
