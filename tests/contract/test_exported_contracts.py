"""The exported contracts hold for third-party tools, not only for our own pydantic models.

`zerocarbon schemas export` output is checked the way a partner would check it:
check-jsonschema validates realistic samples (registry devices, territory communes,
timestamps with offsets) against each ``<Type>.schema.json``, and the official AsyncAPI
parser (tools/asyncapi-check) validates ``asyncapi.json``. Every valid sample must also be
accepted by the model, and every invalid one refused by both, so schema and model agree.
No broker is needed; the platform clock is fixed, so nothing depends on when the test runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from config.settings import Settings
from schemas.catalogue import FAMILY_MESSAGES, raw_topic
from schemas.dead_letter import DeadLetter, Origin
from schemas.families import FAMILIES
from schemas.json_schemas import EVENT_TYPES
from stack.install_step import step_environment
from streams.validation.stage import Accepted, validate_payload
from tests.contract.samples import INVALID, REFERENCE, VALID, Payload

REPO = Path(__file__).resolve().parents[2]
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
ASYNCAPI_CHECK = REPO / "tools" / "asyncapi-check"
MODELS = {model.__name__: model for model in EVENT_TYPES}
FAMILY_OF = {name: family for family, names in FAMILY_MESSAGES.items() for name in names}
# The platform clock for the plausibility rules: fixed, a little after the samples' times.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


# --- tools --------------------------------------------------------------------------------


def _run(
    *command: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env, check=False
    )


def _write(directory: Path, name: str, payload: Payload | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=2), encoding="utf-8")
    return path


def _check_jsonschema(schema: Path, *instances: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        CHECK_JSONSCHEMA, "--output-format", "json", "--schemafile", str(schema), *map(str, instances)
    )


def _origin(family: str) -> Origin:
    return Origin(transport="kafka", topic=raw_topic(family), partition=0, offset=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The contracts as `zerocarbon schemas export` writes them."""
    directory = tmp_path_factory.mktemp("contracts")
    done = _run(sys.executable, "-m", "zerocarbon.cli", "schemas", "export", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="module")
def asyncapi_validator(settings: Settings) -> Path:
    """validate.mjs next to the official parser, installed once per user in the cache folder."""
    env = step_environment(os.environ, {"ZC_CACHE_DIR": str(settings.cache_dir)})
    done = _run("bash", str(ASYNCAPI_CHECK / "install.sh"), timeout=600, env=env)
    assert done.returncode == 0, (
        f"tools/asyncapi-check/install.sh failed (Node.js >= 18 and npm needed):\n{done.stderr}"
    )
    return Path(done.stdout.strip().splitlines()[-1]) / "validate.mjs"


def _asyncapi_diagnostics(validator: Path, document: Path) -> tuple[int, list[dict[str, Any]]]:
    done = _run("node", str(validator), "--json", str(document))
    assert done.returncode in (0, 1), done.stderr
    diagnostics: list[dict[str, Any]] = json.loads(done.stdout)
    return done.returncode, diagnostics


# --- JSON Schema --------------------------------------------------------------------------


def test_every_exported_type_has_valid_and_invalid_samples(exported: Path) -> None:
    exported_types = {path.name.removesuffix(".schema.json") for path in exported.glob("*.schema.json")}
    assert exported_types == set(MODELS) == set(VALID) == set(INVALID)


def test_exported_schemas_are_valid_draft_2020_12(exported: Path) -> None:
    done = _run(CHECK_JSONSCHEMA, "--check-metaschema", *sorted(map(str, exported.glob("*.schema.json"))))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_valid_samples_pass_check_jsonschema(exported: Path, tmp_path: Path, type_name: str) -> None:
    samples = [_write(tmp_path, f"{type_name}-{i}", sample) for i, sample in enumerate(VALID[type_name])]
    done = _check_jsonschema(exported / f"{type_name}.schema.json", *samples)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_valid_samples_are_accepted_by_the_model(type_name: str) -> None:
    for sample in VALID[type_name]:
        event = MODELS[type_name].model_validate_json(json.dumps(sample))
        assert json.loads(event.model_dump_json(by_alias=True, exclude_unset=True)).keys() == sample.keys()


@pytest.mark.parametrize("type_name", sorted(FAMILY_OF))
def test_valid_family_samples_pass_the_whole_validation_stage(type_name: str) -> None:
    """Registered device, commune of the territory, plausible values: the worker accepts them."""
    family = FAMILIES[FAMILY_OF[type_name]]
    for sample in VALID[type_name]:
        outcome = validate_payload(family, json.dumps(sample).encode(), _origin(family.name), REFERENCE, NOW)
        assert isinstance(outcome, Accepted), outcome
        assert type(outcome.event) is MODELS[type_name]


@pytest.mark.parametrize("type_name", sorted(INVALID))
def test_invalid_samples_fail_check_jsonschema_on_the_expected_field(
    exported: Path, tmp_path: Path, type_name: str
) -> None:
    cases = {
        _write(tmp_path, f"{type_name}-{case.label}", case.payload).name: case for case in INVALID[type_name]
    }
    done = _check_jsonschema(exported / f"{type_name}.schema.json", *(tmp_path / name for name in cases))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["parse_errors"] == [], "the schema or a sample could not be read"
    for name, case in cases.items():
        errors = [e for e in report["errors"] if Path(e["filename"]).name == name]
        assert any(e["path"] == case.path and case.message in e["message"] for e in errors), (name, errors)


@pytest.mark.parametrize("type_name", sorted(INVALID))
def test_invalid_samples_are_refused_by_the_model(type_name: str) -> None:
    for case in INVALID[type_name]:
        with pytest.raises(ValidationError):
            MODELS[type_name].model_validate_json(json.dumps(case.payload))


def test_what_the_validation_stage_writes_passes_check_jsonschema(exported: Path, tmp_path: Path) -> None:
    """Accepted events (with ingestion_time) and dead letters, serialised as the agent does."""
    written: dict[str, list[Path]] = {}
    for type_name, family_name in FAMILY_OF.items():
        family = FAMILIES[family_name]
        cases: list[tuple[str, type]] = [(json.dumps(sample), Accepted) for sample in VALID[type_name]]
        cases += [(json.dumps(case.payload), DeadLetter) for case in INVALID[type_name]]
        cases.append(('{"not": "closed"', DeadLetter))  # not even JSON: dead-lettered verbatim
        for i, (raw, expected) in enumerate(cases):
            outcome = validate_payload(family, raw.encode(), _origin(family_name), REFERENCE, NOW)
            assert isinstance(outcome, expected), (raw, outcome)
            event = outcome.event if isinstance(outcome, Accepted) else outcome
            assert isinstance(event, BaseModel)
            name = type(event).__name__
            out = _write(tmp_path / name, f"{type_name}-{i}", event.model_dump_json(by_alias=True))
            written.setdefault(name, []).append(out)
    assert set(written) == set(FAMILY_OF) | {"DeadLetter"}
    for name, paths in sorted(written.items()):
        done = _check_jsonschema(exported / f"{name}.schema.json", *paths)
        assert done.returncode == 0, (name, done.stdout + done.stderr)


# --- AsyncAPI -----------------------------------------------------------------------------


def test_exported_asyncapi_passes_the_official_parser(exported: Path, asyncapi_validator: Path) -> None:
    code, diagnostics = _asyncapi_diagnostics(asyncapi_validator, exported / "asyncapi.json")
    assert [d for d in diagnostics if d["severity"] == "error"] == []
    assert code == 0


def _dangling_channel(doc: Payload) -> tuple[list[str], str]:
    name, operation = next(iter(doc["operations"].items()))
    operation["channel"] = {"$ref": "#/channels/no_such_channel"}
    return ["operations", name, "channel", "$ref"], "invalid-ref"


def _message_of_another_channel(doc: Payload) -> tuple[list[str], str]:
    name, operation = next(iter(doc["operations"].items()))
    own = doc["channels"][operation["channel"]["$ref"].rsplit("/", 1)[1]]["messages"]
    other, channel = next(
        (cid, ch) for cid, ch in doc["channels"].items() if not set(ch["messages"]) & set(own)
    )
    message = next(iter(channel["messages"]))
    operation["messages"] = [{"$ref": f"#/channels/{other}/messages/{message}"}]
    return ["operations", name, "messages", "0"], "asyncapi3-operation-messages-from-referred-channel"


def _payload_property_of_unknown_type(doc: Payload) -> tuple[list[str], str]:
    # The parser validates payload schemas too, so a bad JSON Schema from pydantic would show.
    name = next(key for key, schema in doc["components"]["schemas"].items() if "properties" in schema)
    field = next(iter(doc["components"]["schemas"][name]["properties"]))
    doc["components"]["schemas"][name]["properties"][field]["type"] = "decimal"
    return ["components", "schemas", name, "properties", field, "type"], "asyncapi-document-resolved"


@pytest.mark.parametrize(
    "breakage", [_dangling_channel, _message_of_another_channel, _payload_property_of_unknown_type]
)
def test_the_official_parser_rejects_a_broken_document(
    exported: Path,
    asyncapi_validator: Path,
    tmp_path: Path,
    breakage: Callable[[Payload], tuple[list[str], str]],
) -> None:
    doc = json.loads((exported / "asyncapi.json").read_text(encoding="utf-8"))
    path, rule = breakage(doc)
    broken = _write(tmp_path, "asyncapi", doc)
    code, diagnostics = _asyncapi_diagnostics(asyncapi_validator, broken)
    assert code == 1
    errors = [(d["code"], d["path"]) for d in diagnostics if d["severity"] == "error"]
    assert (rule, path) in errors, errors
