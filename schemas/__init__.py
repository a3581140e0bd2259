"""Event contracts: the pydantic models every producer and consumer of the platform agrees on."""
