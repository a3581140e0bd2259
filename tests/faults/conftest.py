"""The fault suite (issue 19): each scenario breaks one part of the real local stack under a
simulated territory's load, then reconciles what was published with what came out."""

from tests.integration.conftest import gateway_login, kafka_admin, local_stack

__all__ = ["gateway_login", "kafka_admin", "local_stack"]
