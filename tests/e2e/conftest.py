"""Whole journeys (device to InfluxDB) run against the same real local stack as tests/integration."""

from tests.integration.conftest import gateway_login, kafka_admin, local_stack

__all__ = ["gateway_login", "kafka_admin", "local_stack"]
