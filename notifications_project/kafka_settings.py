"""Kafka settings (imported into settings.py): partitions, timeouts, fetch waits, authentication, replication."""

from .env import ConfigError, env_int, env_str

KAFKA_PARTITIONS = env_int("KAFKA_PARTITIONS", 50, 1)
KAFKA_EVENTS_PARTITIONS = env_int("KAFKA_EVENTS_PARTITIONS", 8, 1)
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 6000, 1000)
KAFKA_HEARTBEAT_INTERVAL_MS = env_int("KAFKA_HEARTBEAT_INTERVAL_MS", 1000, 100)
# How Kafka clients authenticate (apps/streaming/security.py): docker-compose uses SASL/SCRAM, the local
# Tansu broker plain connections (its SASL handshake fails with every mechanism: README "Kafka authentication").
KAFKA_SECURITY_PROTOCOL = env_str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
KAFKA_SASL_MECHANISM = env_str("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
KAFKA_SASL_USERNAME = env_str("KAFKA_SASL_USERNAME", "")
KAFKA_SASL_PASSWORD = env_str("KAFKA_SASL_PASSWORD", "")  # or KAFKA_SASL_PASSWORD_FILE
KAFKA_SSL_CA_LOCATION = env_str("KAFKA_SSL_CA_LOCATION", "")
if KAFKA_SECURITY_PROTOCOL not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
    raise ConfigError("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", KAFKA_SECURITY_PROTOCOL)
if KAFKA_SECURITY_PROTOCOL.startswith("SASL_"):
    if KAFKA_SASL_MECHANISM not in ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"):
        raise ConfigError("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", KAFKA_SASL_MECHANISM)
    for _name, _value in (("KAFKA_SASL_USERNAME", KAFKA_SASL_USERNAME), ("KAFKA_SASL_PASSWORD", KAFKA_SASL_PASSWORD)):
        if not _value:
            raise ConfigError(_name, f"a value with KAFKA_SECURITY_PROTOCOL={KAFKA_SECURITY_PROTOCOL}"
                                     " (the password best from a file: KAFKA_SASL_PASSWORD_FILE)", "")
# The events bridge, which every notification crosses, polls with short fetch waits; the others with long.
KAFKA_URGENT_FETCH_WAIT_MS = env_int("KAFKA_URGENT_FETCH_WAIT_MS", 10, 1)
KAFKA_BULK_FETCH_WAIT_MS = env_int("KAFKA_BULK_FETCH_WAIT_MS", 500, 1)
# High-priority topics carry single-user messages: few partitions keep their short-wait fetches cheap.
KAFKA_HIGH_PARTITIONS = env_int("KAFKA_HIGH_PARTITIONS", 8, 1)
# Topics are created with these (docker-compose: 3 and 2); a write is acknowledged by that many in-sync replicas.
KAFKA_REPLICATION_FACTOR = env_int("KAFKA_REPLICATION_FACTOR", 1, 1)
KAFKA_MIN_INSYNC_REPLICAS = env_int("KAFKA_MIN_INSYNC_REPLICAS", 1, 1)
# notify.dlq keeps its copies of dead letters this long (retention.ms, set when the topic is created): an erased
# recipient's traces there are gone after it. The dead letters in PostgreSQL are the ones to replay from.
KAFKA_DLQ_RETENTION_HOURS = env_int("KAFKA_DLQ_RETENTION_HOURS", 7 * 24, 1)
if KAFKA_MIN_INSYNC_REPLICAS > KAFKA_REPLICATION_FACTOR:
    raise ConfigError("KAFKA_MIN_INSYNC_REPLICAS", f"at most KAFKA_REPLICATION_FACTOR ({KAFKA_REPLICATION_FACTOR})",
                      str(KAFKA_MIN_INSYNC_REPLICAS))
