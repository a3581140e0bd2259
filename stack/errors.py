"""Errors of the local stack, each saying what failed and what to do about it."""


class StackError(RuntimeError):
    """A local service could not be installed, started, or reached."""
