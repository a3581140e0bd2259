"""The scoped InfluxDB tokens against the real InfluxDB of the stack: the readers' token cannot
write, the sink's cannot read nor reach another organisation, setup keeps, replaces and
creates them (a stack home from before them gets them at its next `stack up`)."""

from __future__ import annotations

import dataclasses
import json
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from sinks.influx_target import InfluxTarget
from stack import control
from stack.influx_provisioning import (
    READ,
    SINK,
    BucketRetention,
    InfluxProvisioning,
    provision,
    revoke,
    role_description,
    token_file,
)
from stack.influxdb_server import InfluxDBServer
from stack.stack_config import StackConfig
from zerocarbon.component_configs import influx_setup_config


def line() -> str:
    """A point of now: within the 1-minute bucket's retention, which refuses older ones."""
    return f"zc_test_tokens,window=1h,commune=17300 value=1.0 {int(time.time())}"


def call(
    settings: Settings, token: str, method: str, path: str, body: bytes | None = None, **params: str
) -> tuple[int, Any]:
    """One InfluxDB API request with ``token``: (status, the answer's JSON or text)."""
    query = "?" + urllib.parse.urlencode(params) if params else ""
    request = urllib.request.Request(f"{settings.influx_url}{path}{query}", data=body, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json" if path != "/api/v2/write" else "text/plain")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return status, raw.decode()


def write(settings: Settings, token: str, bucket: str, org: str | None = None) -> int:
    org = org or settings.influx_org
    return call(
        settings, token, "POST", "/api/v2/write", line().encode(), org=org, bucket=bucket, precision="s"
    )[0]


def query(settings: Settings, token: str, bucket: str, org: str | None = None) -> tuple[int, Any]:
    flux = f'from(bucket: "{bucket}") |> range(start: 0) |> limit(n: 1)'
    body = json.dumps({"query": flux, "type": "flux"}).encode()
    return call(settings, token, "POST", "/api/v2/query", body, org=org or settings.influx_org)


def no_token_shown(settings: Settings, token: str) -> bool:
    """The token lists no authorization: neither its own nor another's token value."""
    status, listed = call(settings, token, "GET", "/api/v2/authorizations")
    return status in (401, 403) or (status == 200 and listed["authorizations"] == [])


def operator(settings: Settings) -> str:
    return settings.influx_token.get_secret_value()


@pytest.fixture
def other_org(settings: Settings) -> Iterator[tuple[str, str]]:
    """Another organisation with a bucket holding a point, made with the operator token."""
    name = f"zc-test-other-{uuid.uuid4().hex[:8]}"
    status, org = call(
        settings, operator(settings), "POST", "/api/v2/orgs", json.dumps({"name": name}).encode()
    )
    assert status == 201, org
    bucket = {"orgID": org["id"], "name": "indicators", "retentionRules": []}
    status, answer = call(
        settings, operator(settings), "POST", "/api/v2/buckets", json.dumps(bucket).encode()
    )
    assert status == 201, answer
    assert write(settings, operator(settings), "indicators", org=name) == 204
    try:
        yield name, "indicators"
    finally:
        call(settings, operator(settings), "DELETE", f"/api/v2/orgs/{org['id']}")


def test_setup_wrote_each_token_readable_by_its_owner_only(stack_config: StackConfig) -> None:
    for role in (SINK, READ):
        path = token_file(stack_config.influx_tokens_dir, role)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        assert path.read_text() not in ("", stack_config.influx_token)


def test_the_readers_token_reads_the_indicators_and_gets_an_error_on_write(
    settings: Settings, influx_target: InfluxTarget
) -> None:
    for bucket in (influx_target.bucket, influx_target.minute_bucket):
        assert write(settings, influx_target.token, bucket) == 403
        assert query(settings, influx_target.token, bucket)[0] == 200
    assert no_token_shown(settings, influx_target.token)


def test_the_sinks_token_writes_its_two_buckets_and_reads_nothing(
    settings: Settings, influx_write_target: InfluxTarget
) -> None:
    token = influx_write_target.token
    for bucket in (influx_write_target.bucket, influx_write_target.minute_bucket):
        assert write(settings, token, bucket) == 204
        assert query(settings, token, bucket)[0] != 200  # not even the buckets it writes
    status, listed = call(settings, token, "GET", "/api/v2/buckets")
    assert status == 200 and listed["buckets"] == []  # it sees no bucket
    new_bucket = json.dumps({"orgID": "0000000000000001", "name": "zc_test_not_allowed"}).encode()
    assert call(settings, token, "POST", "/api/v2/buckets", new_bucket)[0] in (401, 403, 404)
    assert no_token_shown(settings, token)


def test_the_sinks_token_cannot_read_or_write_another_organisations_bucket(
    settings: Settings,
    influx_write_target: InfluxTarget,
    influx_target: InfluxTarget,
    other_org: tuple[str, str],
) -> None:
    org, bucket = other_org
    assert write(settings, influx_write_target.token, bucket, org=org) in (401, 403, 404)
    assert query(settings, influx_write_target.token, bucket, org=org)[0] != 200
    # Nor the readers': the point is there (the operator reads it), but not for them.
    assert write(settings, influx_target.token, bucket, org=org) in (401, 403, 404)
    assert query(settings, influx_target.token, bucket, org=org)[0] != 200
    status, rows = query(settings, operator(settings), bucket, org=org)
    assert status == 200 and "zc_test_tokens" in rows


def test_setup_again_keeps_the_tokens_it_made(stack_config: StackConfig) -> None:
    files = {role: token_file(stack_config.influx_tokens_dir, role) for role in (SINK, READ)}
    before = {role: path.read_text() for role, path in files.items()}
    done = provision(InfluxDBServer(stack_config).provisioning)
    assert set(done.values()) == {"kept"}, done
    assert {role: path.read_text() for role, path in files.items()} == before


def test_a_stack_home_from_before_scoped_tokens_gets_them_at_its_next_up(
    settings: Settings, stack_config: StackConfig
) -> None:
    """What a stack home made before this change holds: no scoped token, neither in InfluxDB
    nor in files. The next `stack up` creates both; the service works with them."""
    tokens_dir = stack_config.influx_tokens_dir
    old_sink = token_file(tokens_dir, SINK).read_text()
    status, listed = call(settings, operator(settings), "GET", "/api/v2/authorizations")
    assert status == 200
    ours = {role_description(role, "service") for role in (SINK, READ)}
    for authorization in listed["authorizations"]:
        if authorization["description"] in ours:
            call(settings, operator(settings), "DELETE", f"/api/v2/authorizations/{authorization['id']}")
    for role in (SINK, READ):
        token_file(tokens_dir, role).unlink()

    report = control.up(stack_config)

    assert all(service["healthy"] for service in report), report
    sink, reader = (token_file(tokens_dir, role).read_text() for role in (SINK, READ))
    assert write(settings, sink, settings.influx_bucket) == 204
    assert query(settings, reader, settings.influx_bucket)[0] == 200
    assert write(settings, old_sink, settings.influx_bucket) == 401  # deleted, as an upgrade leaves none


def test_setup_aligns_retention_rotates_and_revokes_the_tokens_of_its_scope(
    settings: Settings, influx_write_target: InfluxTarget, tmp_path: Path
) -> None:
    """A scope of its own (as a benchmark's): the service's tokens are not touched."""
    run = uuid.uuid4().hex[:8]
    buckets = (BucketRetention(f"zc_test_{run}", 0), BucketRetention(f"zc_test_{run}_1m", 86_400))
    setup = dataclasses.replace(
        influx_setup_config(settings), buckets=buckets, tokens_dir=tmp_path, scope=f"test {run}"
    )
    try:
        first = provision(setup)
        assert first == {
            f"bucket zc_test_{run}": "created",
            f"bucket zc_test_{run}_1m": "created",
            "token sink": "created",
            "token read": "created",
        }
        sink = token_file(tmp_path, SINK).read_text()
        assert write(settings, sink, f"zc_test_{run}_1m") == 204
        assert write(settings, sink, settings.influx_bucket) == 403  # the service's bucket: not its own

        longer = dataclasses.replace(
            setup, buckets=(buckets[0], BucketRetention(buckets[1].name, 2 * 86_400))
        )
        again = provision(longer)
        assert again[f"bucket zc_test_{run}_1m"] == "retention 86400s -> 172800s"
        assert again["token sink"] == "kept"  # the bucket's id, so its permissions, did not change

        rotated = provision(longer, rotate=True)
        assert rotated["token sink"] == rotated["token read"] == "created"
        new_sink = token_file(tmp_path, SINK).read_text()
        assert new_sink != sink
        assert write(settings, sink, f"zc_test_{run}") == 401  # the old one was deleted
        assert write(settings, new_sink, f"zc_test_{run}") == 204

        assert revoke(longer) == 2
        assert not token_file(tmp_path, SINK).exists()
        assert write(settings, new_sink, f"zc_test_{run}") == 401
        assert write(settings, influx_write_target.token, settings.influx_bucket) == 204  # untouched
    finally:
        _delete_buckets(settings, setup, [b.name for b in buckets])


def _delete_buckets(settings: Settings, setup: InfluxProvisioning, names: list[str]) -> None:
    for name in names:
        status, found = call(settings, operator(settings), "GET", "/api/v2/buckets", name=name, org=setup.org)
        for bucket in found.get("buckets", []) if status == 200 else []:
            call(settings, operator(settings), "DELETE", f"/api/v2/buckets/{bucket['id']}")
