"""Where results go: InfluxDB for time series, Kafka and MQTT for indicator subscribers."""
