"""A command beyond the loopback refuses the local stack's development secrets, and says what to set."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from config.development_secrets import (
    DEVELOPMENT_INFLUX_PASSWORD,
    DEVELOPMENT_INFLUX_TOKEN,
    startup_refusal,
)
from config.settings import Settings
from zerocarbon import cli, service_secrets

OWN = "a-secret-of-our-own-7f3c9e"


def test_on_the_loopback_the_development_values_are_fine() -> None:
    addresses = {"bind_host": "127.0.0.1", "influx_host": "localhost", "kafka_host": "::1"}
    secrets = {"influx_token": DEVELOPMENT_INFLUX_TOKEN, "influx_password": DEVELOPMENT_INFLUX_PASSWORD}
    assert startup_refusal("stack up", addresses, secrets) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "influxdb", "10.0.0.5", "influx.example.org"])
def test_beyond_the_loopback_a_development_value_is_refused_and_named(host: str) -> None:
    refused = startup_refusal(
        "stack up",
        {"bind_host": host},
        {"influx_password": DEVELOPMENT_INFLUX_PASSWORD, "influx_token": OWN},
    )
    assert refused is not None
    assert "ZC_INFLUX_PASSWORD" in refused and "ZC_BIND_HOST" in refused
    assert "ZC_INFLUX_TOKEN" not in refused  # it is the operator's own: nothing to change there
    assert DEVELOPMENT_INFLUX_PASSWORD not in refused  # the message never repeats a secret


def test_beyond_the_loopback_secrets_of_ones_own_are_fine() -> None:
    assert startup_refusal("sink", {"influx_host": "influxdb"}, {"influx_sink_token": OWN}) is None


def test_a_secret_not_set_is_not_a_development_value() -> None:
    """A scoped token left to the file setup wrote: InfluxDB generated it."""
    assert startup_refusal("view", {"view_host": "0.0.0.0"}, {"influx_read_token": None}) is None


def test_a_scoped_token_set_to_the_operators_development_token_is_refused() -> None:
    refused = startup_refusal(
        "sink", {"influx_host": "influxdb"}, {"influx_sink_token": DEVELOPMENT_INFLUX_TOKEN}
    )
    assert refused is not None and "ZC_INFLUX_SINK_TOKEN" in refused


def test_the_stack_bound_beyond_the_loopback_refuses_its_default_password_and_token() -> None:
    refused = service_secrets.refusal(Settings(bind_host="0.0.0.0"), "stack up")
    assert refused is not None
    assert "ZC_INFLUX_PASSWORD" in refused and "ZC_INFLUX_TOKEN" in refused
    mine = Settings(bind_host="0.0.0.0", influx_password=SecretStr(OWN), influx_token=SecretStr(OWN + "t"))
    assert service_secrets.refusal(mine, "stack up") is None


def test_a_command_is_judged_on_the_secrets_it_holds_only() -> None:
    """The bridge and the worker hold no InfluxDB secret: the default password is not theirs."""
    remote = Settings(
        kafka_host="kafka", mqtt_host="mosquitto", influx_host="influxdb", worker_web_host="0.0.0.0"
    )
    assert service_secrets.refusal(remote, "bridge") is None
    assert service_secrets.refusal(remote, "worker") is None
    assert service_secrets.refusal(remote, "sink") is None  # its token: the file setup wrote
    assert service_secrets.refusal(remote, "influx setup") is not None  # the operator's development token


def test_every_holding_names_real_settings() -> None:
    fields = set(Settings.model_fields)
    for command, holdings in service_secrets.HOLDINGS.items():
        assert set(holdings.addresses) <= fields, command
        assert set(holdings.secrets) <= fields, command


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["stack", "up"], "stack up"),
        (["influx", "setup"], "influx setup"),
        (["sink"], "sink"),
        (["view"], "view"),
        (["worker"], "worker"),
        (["bridge"], "bridge"),
        (["demo"], "demo"),
    ],
)
def test_the_cli_names_each_long_running_command_as_the_holdings_do(argv: list[str], name: str) -> None:
    assert cli.started_command(cli.build_parser().parse_args(argv)) == name
    assert name in service_secrets.HOLDINGS


def test_a_status_run_holds_nothing() -> None:
    args = cli.build_parser().parse_args(["sink", "--status"])
    assert cli.started_command(args) not in service_secrets.HOLDINGS


def test_the_cli_refuses_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZC_BIND_HOST", "0.0.0.0")
    monkeypatch.setattr(cli, "_stack", lambda *_: pytest.fail("the stack was started"))
    assert cli.main(["stack", "up"]) == 2
    err = capsys.readouterr().err
    assert "ZC_INFLUX_PASSWORD" in err and "ZC_INFLUX_TOKEN" in err and "docs/security.md" in err
