#!/bin/sh
# One-shot, after the brokers are healthy and before migrate: the SCRAM users of the client listener and
# their ACLs (the brokers deny what no ACL allows). The platform's user "notify" may use its topics (prefix
# notify.) and consumer groups (bridge., lag-probe-); each other service listed in the secret file
# kafka_producers ("name password" a line) gets a user that may write notify.events and nothing else.
# Passwords go through files, never on a command line. Running it again updates passwords and ACLs.
set -eu
secrets=${SECRETS_DIR:-/run/secrets}
bin=${KAFKA_BIN:-/opt/kafka/bin}
server=${KAFKA_ADMIN_BOOTSTRAP:-kafka-1:9094}
prefix=${KAFKA_TOPIC_PREFIX:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

admin=$(cat "$secrets/kafka_admin_password")
cat > "$work/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin";
PROPERTIES

scram_user() {  # name password
  printf 'SCRAM-SHA-512=[password=%s]\n' "$2" > "$work/scram.properties"
  "$bin/kafka-configs.sh" --bootstrap-server "$server" --command-config "$work/admin.properties" \
    --alter --entity-type users --entity-name "$1" --add-config-file "$work/scram.properties"
}
acl() {  # kafka-acls.sh arguments after --add
  "$bin/kafka-acls.sh" --bootstrap-server "$server" --command-config "$work/admin.properties" --add "$@"
}

scram_user notify "$(cat "$secrets/kafka_notify_password")"
acl --allow-principal User:notify --operation All --topic "${prefix}notify." --resource-pattern-type prefixed
acl --allow-principal User:notify --operation All --group "${prefix}bridge." --resource-pattern-type prefixed
acl --allow-principal User:notify --operation All --group lag-probe- --resource-pattern-type prefixed
acl --allow-principal User:notify --operation Describe --operation Create --cluster

if [ -f "$secrets/kafka_producers" ]; then
  while read -r name password; do
    case $name in ""|"#"*) continue ;; esac
    scram_user "$name" "$password"
    acl --allow-principal "User:$name" --operation Write --operation Describe --topic "${prefix}notify.events"
  done < "$secrets/kafka_producers"
fi
echo "kafka users and ACLs in place"
