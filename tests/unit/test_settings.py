"""Configuration: defaults, TOML file and ZC_* variables, in that order of precedence."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import Settings
from stack.isolated_stack import isolated_settings
from zerocarbon.cli import build_parser, with_setting_defaults


def test_defaults_match_the_local_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in isolated_settings({}):  # the suite's own instance (tests/conftest.py)
        monkeypatch.delenv(name)
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.influx_url == "http://127.0.0.1:8086"
    assert (s.mqtt_port, s.mqtt_tls, s.mqtt_plain_port) == (8883, True, 1883)


def test_environment_overrides_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "zc.toml"
    config.write_text('kafka_port = 19092\ninflux_org = "from-file"\n')
    monkeypatch.setenv("ZC_CONFIG", str(config))
    monkeypatch.setenv("ZC_KAFKA_PORT", "29092")
    s = Settings()
    assert s.kafka_port == 29092
    assert s.influx_org == "from-file"


def test_unknown_key_in_config_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "zc.toml"
    config.write_text("kafka_prot = 1\n")
    monkeypatch.setenv("ZC_CONFIG", str(config))
    with pytest.raises(ValidationError, match="kafka_prot"):
        Settings()


def test_masked_view_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZC_INFLUX_TOKEN", "s3cret-token")
    shown = Settings().masked
    assert shown["influx_token"] == "********"
    assert "s3cret-token" not in repr(shown)


def test_the_cli_s_defaults_come_from_the_settings_file_and_options_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--log-level and --client-id took their defaults from the environment only, never the file."""
    config = tmp_path / "zc.toml"
    config.write_text('log_level = "WARNING"\nbridge_client_id = "bridge-from-file"\n')
    monkeypatch.setenv("ZC_CONFIG", str(config))
    parser = build_parser()
    args = with_setting_defaults(parser.parse_args(["bridge"]), Settings())
    assert (args.log_level, args.client_id) == ("WARNING", "bridge-from-file")
    given = parser.parse_args(["--log-level", "DEBUG", "bridge", "--client-id", "mine"])
    args = with_setting_defaults(given, Settings())
    assert (args.log_level, args.client_id) == ("DEBUG", "mine")
