"""How every Kafka client of ours authenticates: the one place librdkafka's security settings are made.

From env (README "Kafka authentication"): KAFKA_SECURITY_PROTOCOL (PLAINTEXT locally; SASL_PLAINTEXT or
SASL_SSL in docker-compose), KAFKA_SASL_MECHANISM (SCRAM-SHA-512), KAFKA_SASL_USERNAME and the password,
KAFKA_SASL_PASSWORD, best read from a secrets file with KAFKA_SASL_PASSWORD_FILE; KAFKA_SSL_CA_LOCATION for
TLS. The password goes to librdkafka and nowhere else: `shown` is the form for messages and logs.
"""

from __future__ import annotations

from django.conf import settings

SECRET_KEYS = ("sasl.password", "ssl.key.password")


def security_config() -> dict[str, str]:
    """The librdkafka settings for the configured protocol (merged into every client's configuration)."""
    protocol = settings.KAFKA_SECURITY_PROTOCOL
    config = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        config |= {"sasl.mechanism": settings.KAFKA_SASL_MECHANISM, "sasl.username": settings.KAFKA_SASL_USERNAME,
                   "sasl.password": settings.KAFKA_SASL_PASSWORD}
    if protocol.endswith("SSL") and settings.KAFKA_SSL_CA_LOCATION:
        config["ssl.ca.location"] = settings.KAFKA_SSL_CA_LOCATION
    return config


def shown(config: dict) -> dict:
    """A client configuration with its secrets replaced, fit for a message or a log line."""
    return {key: "***" if key in SECRET_KEYS and value else value for key, value in config.items()}
