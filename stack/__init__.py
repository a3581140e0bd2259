"""The embedded local stack: Kafka (KRaft), Mosquitto and InfluxDB 2 as local processes.

Each service installs itself on first use into a per-user cache keyed by version, writes
its own configuration, runs bound to 127.0.0.1 and reports its health.
"""
