"""The embedded local stack: Kafka (KRaft), Mosquitto and InfluxDB 2 as local processes.

Each service installs itself on first use into a per-user cache keyed by version and a hash
of its build inputs, writes its own configuration, runs bound to 127.0.0.1 and reports its
health.
"""
