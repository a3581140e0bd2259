"""The MQTT-to-Kafka bridge: what devices publish reaches Kafka before the broker forgets it."""
