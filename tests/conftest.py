"""Shared fixtures and the suite's two rules: it keeps to its own stack, and it skips nothing.

The suite runs against an isolated stack instance (stack/isolated_stack.py): the developer's
``ZC_*`` variables and ``./zerocarbon.toml`` are not read, and what tests write (topics,
consumer groups, checkpoints, buckets, MQTT topics, spool folders) never lands in a stack a
person runs on the same machine. This runs at import, before any test module reads settings,
and reaches every process a test starts.
"""

from __future__ import annotations

import pytest

from config.settings import Settings
from sinks.influx_target import InfluxTarget
from stack import isolated_stack
from stack.stack_config import StackConfig
from zerocarbon import component_configs

isolated_stack.enter(hold=False)  # the stack's fixture holds it: unit tests never wait for it


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack_config(settings: Settings) -> StackConfig:
    """The isolated stack's, as `zerocarbon stack` builds it."""
    return component_configs.stack_config(settings)


# Per test, not per session: the tokens are read from the files setup wrote, and a test of
# setup (tests/integration/test_influx_tokens.py) replaces them.
@pytest.fixture
def influx_target(settings: Settings) -> InfluxTarget:
    """Where the isolated stack's indicators are read back, with the readers' token (read only)."""
    return component_configs.influx_read_target(settings)


@pytest.fixture
def influx_write_target(settings: Settings) -> InfluxTarget:
    """The same with the sink's token (write only): what a test writes or deletes itself."""
    return component_configs.influx_write_target(settings)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test fails the run: a missing file or service is a defect of the install,
    and a green run that skipped a test would hide it."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} test(s) skipped: the run fails (the reasons are listed above; "
            "every file and service a test needs must come with the clone and its install)",
            red=True,
        )
