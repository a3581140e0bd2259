#!/bin/sh
# A Kafka node's command (docker/compose.yaml): format KRaft's storage, then run the broker
# with server.properties beside this script. Every node of the cluster is formatted with the
# same id, ZC_KAFKA_CLUSTER_ID; a volume formatted before keeps its own (meta.properties): Kafka
# refuses to format a volume again under another id, even with --ignore-formatted.
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

: "${ZC_KAFKA_NODE_ID:?set ZC_KAFKA_NODE_ID, this node's number in controller.quorum.voters}"
: "${ZC_KAFKA_NODE_HOST:?set ZC_KAFKA_NODE_HOST, the name clients and the other nodes reach this one at}"
data=$(sed -n 's/^log\.dirs=//p' "$config")
cluster_id=$(sed -n 's/^cluster\.id=//p' "$data/meta.properties" 2>/dev/null || true)
if [ -z "$cluster_id" ]; then
  cluster_id="${ZC_KAFKA_CLUSTER_ID:?set ZC_KAFKA_CLUSTER_ID, the cluster id every node is formatted with: 22 characters of URL-safe base64 (docs/deployment.md)}"
fi
"$bin/kafka-storage.sh" format --ignore-formatted -t "$cluster_id" -c "$config"
exec "$bin/kafka-server-start.sh" "$config"
