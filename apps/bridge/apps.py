from django.apps import AppConfig


class BridgeConfig(AppConfig):
    name = "apps.bridge"
    verbose_name = "Kafka bridge"
