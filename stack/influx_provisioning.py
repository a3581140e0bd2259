"""InfluxDB's indicator buckets and scoped tokens, set up with the operator token, idempotently.

`zerocarbon stack up` runs it after the onboarding of the local InfluxDB, `zerocarbon influx
setup` against any InfluxDB 2 (docker/compose.yaml's ``influx-setup``). It creates the
buckets or aligns their retention, then makes sure two tokens exist (``POST
/api/v2/authorizations``), each limited to the two buckets:

- ``sink``: write, nothing else (a missing bucket shows in the write's own answer, 404);
- ``read``: read, for the operators' page, Grafana, the demo's and the tests' read-backs.

InfluxDB generates a token's value (the API takes none) and never changes its permissions,
so a token whose permissions no longer match (a bucket renamed, recreated) is replaced: a
new one is created, written to its file, then the old one deleted. Each token is written to
``<tokens dir>/<role>/token`` (folders 0700, file 0600): one folder per role, so that a
deployment hands each process only its own (docker/compose.yaml mounts one volume per role).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from stack.errors import StackError
from stack.secret_files import write_secret

SINK: Final = "sink"
READ: Final = "read"
ANALYSIS: Final = "analysis"
INDICATORS: Final = "indicators"
EVIDENCE: Final = "evidence"
BucketKind = Literal["indicators", "evidence"]
# What each role may do on each kind of bucket, and nothing beyond.
ROLE_GRANTS: Final[dict[str, tuple[tuple[str, BucketKind], ...]]] = {
    SINK: (("write", INDICATORS),),
    READ: (("read", INDICATORS), ("read", EVIDENCE)),
    ANALYSIS: (("read", INDICATORS), ("write", EVIDENCE)),
}
ROLE_PURPOSES: Final = {
    SINK: "writes the indicator buckets",
    READ: "reads the indicator and evidence buckets",
    ANALYSIS: "reads the indicator buckets, writes the evidence bucket",
}
# The service's own tokens; a benchmark mints tokens of its own scope for its own buckets.
SERVICE_SCOPE: Final = "service"
# Which setting gives a role's token instead of its file (docs/configuration.md).
ROLE_SETTINGS: Final = {
    SINK: "ZC_INFLUX_SINK_TOKEN",
    READ: "ZC_INFLUX_READ_TOKEN",
    ANALYSIS: "ZC_INFLUX_ANALYSIS_TOKEN",
}

Permission = dict[str, Any]
HOUR: Final = 3_600
DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class BucketRetention:
    name: str
    seconds: int  # 0: forever
    kind: BucketKind = "indicators"  # which roles may do what there (ROLE_GRANTS)


@dataclass(frozen=True, slots=True)
class InfluxProvisioning:
    """Where InfluxDB is, the operator token, and what to set up there."""

    url: str  # http://host:port
    operator_token: str = field(repr=False)
    org: str
    buckets: tuple[BucketRetention, ...]
    tokens_dir: Path
    scope: str = SERVICE_SCOPE  # setup replaces and revokes the tokens of its scope only


def role_description(role: str, scope: str) -> str:
    """How setup recognises the tokens it made: each authorization carries this description."""
    return f"zerocarbon {role} token ({scope}): {ROLE_PURPOSES[role]}"


def shard_seconds(retention_seconds: int) -> int:
    """InfluxDB's default shard group duration for a retention (what it picks at creation)."""
    if retention_seconds and retention_seconds < 2 * DAY:
        return HOUR
    if retention_seconds and retention_seconds <= 180 * DAY:
        return DAY
    return 7 * DAY


def token_file(tokens_dir: Path, role: str) -> Path:
    """Where the token of ``role`` (``sink`` or ``read``) is kept."""
    return tokens_dir / role / "token"


def role_permissions(role: str, org_id: str, bucket_ids: Mapping[str, BucketKind]) -> list[Permission]:
    """The permissions of ``role``: each of its actions on each bucket of its kind, by id."""
    return [
        {"action": action, "resource": {"type": "buckets", "id": bucket_id, "orgID": org_id}}
        for action, kind in ROLE_GRANTS[role]
        for bucket_id in sorted(bucket_ids)
        if bucket_ids[bucket_id] == kind
    ]


def permission_set(permissions: Iterable[Permission]) -> frozenset[tuple[str, str, str | None, str | None]]:
    """Permissions compared as (action, type, id, orgID), whatever else InfluxDB adds (names)."""
    return frozenset(
        (p["action"], p["resource"]["type"], p["resource"].get("id"), p["resource"].get("orgID"))
        for p in permissions
    )


def reusable(authorization: Mapping[str, Any], wanted: Sequence[Permission]) -> bool:
    """An existing authorization may stay: active, exactly the wanted permissions, its token known."""
    return (
        authorization.get("status") == "active"
        and bool(authorization.get("token"))
        and permission_set(authorization.get("permissions", [])) == permission_set(wanted)
    )


class InfluxRefused(StackError):
    """InfluxDB answered setup with an unexpected status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Admin:
    """The few InfluxDB v2 API calls setup needs, with the operator token."""

    def __init__(self, config: InfluxProvisioning) -> None:
        self.config = config

    def call(self, method: str, path: str, body: object | None = None, expect: int = 200) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.config.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Token {self.config.operator_token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except OSError as exc:
            raise StackError(f"InfluxDB setup: {self.config.url} unreachable ({exc})") from exc
        try:
            answer: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        except ValueError:  # not InfluxDB answering (a proxy's page): say what came back
            answer = {"message": raw[:200].decode(errors="replace")}
        if status != expect:
            hint = {
                401: "the operator token is refused: set ZC_INFLUX_TOKEN to the one InfluxDB was set up with",
                403: "the token given as ZC_INFLUX_TOKEN is not the operator's (all-access) token",
            }.get(status, "")
            raise InfluxRefused(
                f"InfluxDB setup: {method} {path.split('?')[0]} answered {status} "
                f"{answer.get('message', '')}; {hint}".rstrip("; "),
                status,
            )
        return answer

    def find(self, path: str, key: str) -> list[dict[str, Any]]:
        """What a listing holds (InfluxDB answers 404 rather than an empty list when a name is not found)."""
        try:
            found: list[dict[str, Any]] = self.call("GET", path).get(key) or []
        except InfluxRefused as exc:
            if exc.status != 404:
                raise
            return []
        return found


def _query(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


def _org_id(admin: _Admin, org: str) -> str:
    orgs = admin.find("/api/v2/orgs" + _query(org=org), "orgs")
    if not orgs:
        raise StackError(
            f"InfluxDB setup: organisation {org!r} not found: check ZC_INFLUX_ORG, and that "
            "ZC_INFLUX_TOKEN is the operator token (a scoped token sees no organisation)"
        )
    return str(orgs[0]["id"])


def _ensure_bucket(admin: _Admin, org_id: str, bucket: BucketRetention) -> tuple[str, str]:
    """The bucket's id, created or with its retention aligned; and what was done."""
    found = admin.find("/api/v2/buckets" + _query(orgID=org_id, name=bucket.name), "buckets")
    if not found:
        rules = [{"type": "expire", "everySeconds": bucket.seconds}] if bucket.seconds else []
        body = {"orgID": org_id, "name": bucket.name, "retentionRules": rules}
        created = admin.call("POST", "/api/v2/buckets", body, expect=201)
        return str(created["id"]), "created"
    current: dict[str, Any] = found[0]
    current_rules: list[dict[str, Any]] = current.get("retentionRules") or []
    seconds = int(current_rules[0].get("everySeconds", 0)) if current_rules else 0
    if seconds == bucket.seconds:
        return str(current["id"]), "kept"
    # everySeconds 0 is "forever" (an empty list would leave the old rule in place); the shard
    # duration must change with it (InfluxDB refuses one longer than the retention).
    rule = {
        "type": "expire",
        "everySeconds": bucket.seconds,
        "shardGroupDurationSeconds": shard_seconds(bucket.seconds),
    }
    patch = {"retentionRules": [rule]}
    admin.call("PATCH", f"/api/v2/buckets/{current['id']}", patch)
    return str(current["id"]), f"retention {seconds}s -> {bucket.seconds}s"


def _ensure_token(
    admin: _Admin,
    config: InfluxProvisioning,
    role: str,
    org_id: str,
    bucket_ids: Mapping[str, BucketKind],
    existing: list[dict[str, Any]],
    rotate: bool,
) -> str:
    wanted = role_permissions(role, org_id, bucket_ids)
    description = role_description(role, config.scope)
    ours = [a for a in existing if a.get("description") == description]
    keep = None if rotate else next((a for a in ours if reusable(a, wanted)), None)
    done = "kept"
    if keep is None:
        body = {"orgID": org_id, "description": description, "permissions": wanted}
        keep = admin.call("POST", "/api/v2/authorizations", body, expect=201)
        done = "created"
    config.tokens_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.tokens_dir.chmod(0o700)
    if write_secret(token_file(config.tokens_dir, role), str(keep["token"])) and done == "kept":
        done = "file rewritten"
    # Only once the new token is in its file: a process reading it never finds none.
    for old in ours:
        if old["id"] != keep["id"]:
            admin.call("DELETE", f"/api/v2/authorizations/{old['id']}", expect=204)
    return done


def provision(config: InfluxProvisioning, rotate: bool = False) -> dict[str, str]:
    """Set up the buckets and the ``sink``, ``read`` and ``analysis`` tokens; what was done to
    each, for the log.

    ``rotate``: new tokens even where the existing ones would do (the old ones are deleted)."""
    admin = _Admin(config)
    org_id = _org_id(admin, config.org)
    done: dict[str, str] = {}
    bucket_ids: dict[str, BucketKind] = {}
    for bucket in config.buckets:
        bucket_id, done[f"bucket {bucket.name}"] = _ensure_bucket(admin, org_id, bucket)
        bucket_ids[bucket_id] = bucket.kind
    existing = admin.call("GET", "/api/v2/authorizations" + _query(orgID=org_id)).get("authorizations") or []
    kinds = set(bucket_ids.values())
    for role, grants in ROLE_GRANTS.items():
        if any(action == "write" and kind not in kinds for action, kind in grants):
            continue  # nothing to write to here (a benchmark's scope has no evidence bucket)
        done[f"token {role}"] = _ensure_token(admin, config, role, org_id, bucket_ids, existing, rotate)
    return done


def revoke(config: InfluxProvisioning) -> int:
    """Delete the tokens of ``config.scope`` and their files (a benchmark's, when it ends); how many."""
    admin = _Admin(config)
    org_id = _org_id(admin, config.org)
    existing = admin.call("GET", "/api/v2/authorizations" + _query(orgID=org_id)).get("authorizations") or []
    descriptions = {role_description(role, config.scope) for role in ROLE_GRANTS}
    ours = [a for a in existing if a.get("description") in descriptions]
    for authorization in ours:
        admin.call("DELETE", f"/api/v2/authorizations/{authorization['id']}", expect=204)
    for role in ROLE_GRANTS:
        token_file(config.tokens_dir, role).unlink(missing_ok=True)
    return len(ours)
