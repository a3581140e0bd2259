#!/bin/sh
# The kafka service's command (docker/compose.yaml): format KRaft's storage, then run the
# broker with server.properties beside this script. The cluster id is generated on the first
# start only and kept in the data volume (meta.properties): Kafka refuses to format a volume
# again under another id, even with --ignore-formatted.
set -eu
here=$(dirname "$0")
config="${ZC_KAFKA_CONFIG:-$here/server.properties}"
bin="${KAFKA_HOME:-/opt/kafka}/bin"

# server.properties reads the broker's password from the environment (Kafka's env config
# provider) into the JAAS configuration, inside double quotes: a quote or a backslash there
# would end the value or escape the next character.
password="${ZC_KAFKA_BROKER_PASSWORD:?set ZC_KAFKA_BROKER_PASSWORD, the broker's own password (docs/deployment.md)}"
case "$password" in
  *'"'* | *'\'*)
    echo "ZC_KAFKA_BROKER_PASSWORD holds a double quote or a backslash, which Kafka's JAAS configuration cannot take: choose another" >&2
    exit 2
    ;;
esac

data=$(sed -n 's/^log\.dirs=//p' "$config")
cluster_id=$(sed -n 's/^cluster\.id=//p' "$data/meta.properties" 2>/dev/null || true)
if [ -z "$cluster_id" ]; then
  cluster_id=$("$bin/kafka-storage.sh" random-uuid)
fi
"$bin/kafka-storage.sh" format --ignore-formatted -t "$cluster_id" -c "$config"
exec "$bin/kafka-server-start.sh" "$config"
