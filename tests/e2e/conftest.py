"""Whole journeys (device to InfluxDB) run against the same real local stack as tests/integration."""

from tests.integration.conftest import local_stack

__all__ = ["local_stack"]
