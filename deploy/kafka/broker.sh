#!/bin/sh
# Starts an Apache Kafka broker of docker-compose with SASL on every listener: writes the JAAS file (PLAIN
# users "broker" and "admin" for the inter-broker and controller listeners, SCRAM on the client listener,
# whose users kafka-users.sh creates) and the admin client's properties from the secret files, then runs
# the image's own start script. Nothing secret is printed.
set -eu
secrets=${SECRETS_DIR:-/run/secrets}
dir=${KAFKA_AUTH_DIR:-/tmp/notify-kafka}
umask 077
mkdir -p "$dir"

read_secret() {
  value=$(cat "$secrets/$1")
  case $value in
    *[!A-Za-z0-9._~+/=-]* | "") echo "kafka: $secrets/$1 must hold a non-empty password of letters, digits and ._~+/=-" >&2; exit 1 ;;
  esac
  printf '%s' "$value"
}
broker=$(read_secret kafka_broker_password)
admin=$(read_secret kafka_admin_password)

plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$broker\" user_broker=\"$broker\" user_admin=\"$admin\";"
cat > "$dir/jaas.conf" <<JAAS
broker.KafkaServer { $plain };
controller.KafkaServer { $plain };
client.KafkaServer { org.apache.kafka.common.security.scram.ScramLoginModule required; };
JAAS
cat > "$dir/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin";
PROPERTIES
KAFKA_OPTS="-Djava.security.auth.login.config=$dir/jaas.conf${KAFKA_OPTS:+ $KAFKA_OPTS}"
export KAFKA_OPTS
exec "${KAFKA_RUN:-/etc/kafka/docker/run}"
