"""The scoped InfluxDB tokens: their permissions, their files, where each process finds its own,
and `zerocarbon config show` never printing one (against InfluxDB itself:
tests/integration/test_influx_tokens.py)."""

from __future__ import annotations

import json
import stat
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from stack.influx_provisioning import (
    ANALYSIS,
    READ,
    SINK,
    BucketRetention,
    permission_set,
    reusable,
    role_description,
    role_permissions,
    shard_seconds,
    token_file,
)
from stack.secret_files import write_secret
from zerocarbon import cli
from zerocarbon.component_configs import (
    influx_buckets,
    influx_read_target,
    influx_token,
    influx_write_target,
    missing_influx_token,
    sink_config,
    stack_config,
    view_config,
)

ORG = "0a1b2c3d4e5f6a7b"
INDICATOR_BUCKETS = ["1111111111111111", "2222222222222222"]
EVIDENCE_BUCKET = "3333333333333333"
BUCKETS = {**dict.fromkeys(INDICATOR_BUCKETS, "indicators"), EVIDENCE_BUCKET: "evidence"}


def _grants(permissions: list[dict[str, typing.Any]]) -> set[tuple[str, str]]:
    assert {(p["resource"]["type"], p["resource"]["orgID"]) for p in permissions} == {("buckets", ORG)}
    return {(p["action"], p["resource"]["id"]) for p in permissions}


def test_each_role_may_do_its_one_thing_on_its_buckets_only() -> None:
    """The sink writes the indicators; readers read everything; the analysis reads the
    indicators and writes its evidence, and may not touch what the sink wrote."""
    assert _grants(role_permissions(SINK, ORG, BUCKETS)) == {("write", b) for b in INDICATOR_BUCKETS}
    assert _grants(role_permissions(READ, ORG, BUCKETS)) == {("read", b) for b in BUCKETS}
    assert _grants(role_permissions(ANALYSIS, ORG, BUCKETS)) == {
        *(("read", b) for b in INDICATOR_BUCKETS),
        ("write", EVIDENCE_BUCKET),
    }


def test_an_existing_token_is_kept_only_with_exactly_the_wanted_permissions() -> None:
    wanted = role_permissions(SINK, ORG, BUCKETS)
    # InfluxDB answers with names added to each resource: they do not make it another permission.
    answered = [
        {**p, "resource": {**p["resource"], "name": "indicators", "org": "zerocarbon"}} for p in wanted
    ]
    good = {"status": "active", "token": "t0k3n", "permissions": answered}
    assert permission_set(answered) == permission_set(wanted)
    assert reusable(good, wanted)
    assert not reusable({**good, "status": "inactive"}, wanted)
    assert not reusable({**good, "token": ""}, wanted)  # a token InfluxDB no longer shows
    assert not reusable({**good, "permissions": answered[:1]}, wanted)  # a bucket recreated, renamed
    reads_too = [*answered, *role_permissions(READ, ORG, BUCKETS)]
    assert not reusable({**good, "permissions": reads_too}, wanted)


def test_a_retention_changed_by_setup_takes_influxdbs_shard_duration_for_it() -> None:
    """InfluxDB refuses a retention shorter than the bucket's shard groups: setup moves both."""
    day = 86_400
    assert [shard_seconds(s) for s in (0, day, 2 * day, 30 * day, 180 * day, 400 * day)] == [
        7 * day, 3_600, day, day, day, 7 * day,
    ]  # fmt: skip


def test_each_scope_and_role_has_its_own_description() -> None:
    names = {
        role_description(role, scope) for role in (SINK, READ, ANALYSIS) for scope in ("service", "bench x")
    }
    assert len(names) == 6


def test_a_token_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = token_file(tmp_path / "tokens", SINK)
    assert path == tmp_path / "tokens" / "sink" / "token"
    assert write_secret(path, "first")
    assert path.read_text() == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    assert not write_secret(path, "first")  # unchanged, but its mode is put right
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_secret(path, "second") and path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no partial file left


def test_a_setting_wins_over_the_file_setup_wrote(tmp_path: Path) -> None:
    settings = Settings(stack_home=tmp_path)
    assert influx_token(settings, SINK) is None
    write_secret(token_file(tmp_path / "influxdb" / "tokens", SINK), "from-the-file")
    write_secret(token_file(tmp_path / "influxdb" / "tokens", READ), "reader-file")
    assert influx_write_target(settings).token == "from-the-file"
    assert influx_read_target(settings).token == "reader-file"
    given = Settings(stack_home=tmp_path, influx_sink_token=SecretStr("from-the-setting"))
    assert influx_write_target(given).token == "from-the-setting"


def test_the_sink_and_the_page_get_their_own_token_and_never_the_operators(tmp_path: Path) -> None:
    tokens = tmp_path / "elsewhere"
    write_secret(token_file(tokens, SINK), "sink-token")
    write_secret(token_file(tokens, READ), "read-token")
    settings = Settings(
        stack_home=tmp_path,
        influx_tokens_dir=tokens,
        sink_mqtt_retained=False,
        kafka_sink_password=SecretStr("kafka-sink"),
        kafka_view_password=SecretStr("kafka-view"),
    )
    assert sink_config(settings).influx.token == "sink-token"
    assert view_config(settings).influx.token == "read-token"
    operator = settings.influx_token.get_secret_value()
    assert operator not in {sink_config(settings).influx.token, view_config(settings).influx.token}


def test_a_missing_token_says_what_to_set_and_what_to_run(tmp_path: Path) -> None:
    message = missing_influx_token(Settings(stack_home=tmp_path), READ)
    assert message is not None
    assert "ZC_INFLUX_READ_TOKEN" in message and "zerocarbon stack up" in message
    assert str(tmp_path / "influxdb" / "tokens" / "read" / "token") in message


def test_the_stack_sets_up_its_buckets_with_their_retention(tmp_path: Path) -> None:
    settings = Settings(stack_home=tmp_path, influx_retention_days=0, influx_minute_retention_days=7)
    assert influx_buckets(settings) == (
        BucketRetention("indicators", 0),
        BucketRetention("indicators_1m", 7 * 86_400),
        BucketRetention("causal_evidence", 0, "evidence"),
    )
    config = stack_config(settings)
    assert config.influx_buckets == influx_buckets(settings)
    assert config.influx_tokens_dir == tmp_path / "influxdb" / "tokens"


def test_config_show_masks_every_token_and_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ZC_INFLUX_SINK_TOKEN", "ZC_INFLUX_READ_TOKEN", "ZC_INFLUX_TOKEN", "ZC_INFLUX_PASSWORD"):
        monkeypatch.setenv(name, f"secret-value-of-{name}")
    assert cli.main(["config", "show"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{") :])
    assert "secret-value-of" not in out
    for name in ("influx_sink_token", "influx_read_token", "influx_token", "influx_password"):
        assert shown[name] == "********"


def test_every_setting_named_as_a_secret_is_a_secret_str() -> None:
    """What `config show` masks is what is typed SecretStr: a new secret typed `str` would be printed."""
    named = [name for name in Settings.model_fields if name.endswith(("_token", "_password", "_secret"))]
    assert "influx_sink_token" in named
    plain = [name for name in named if not _is_secret(Settings.model_fields[name].annotation)]
    assert not plain, f"type these settings SecretStr: {plain}"


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)
