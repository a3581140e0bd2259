"""A lost pseudonym key never comes back as a second key numbered like the first (issue 21).

On the real broker: the audit names a key version (as the stage's releases do), the stage
refuses to start without its key file and says what to do, ``agreements rotate-key`` makes a
key above every version named, and the stage starts with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import SHARING_AUDIT_TOPIC
from sharing.pseudonyms import read_keys
from zerocarbon.processes import start_service, stop_child

NAMED = 7  # a key version the audit names, above what the other tests use


def _zerocarbon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip


async def _audit_release_under(admin: KafkaAccess, party: str, version: int) -> None:
    record = {
        "event": "release", "party": party, "agreement": f"urn:test:{party}", "version": "0" * 64,
        "records": 1, "items": 1, "secret": 0, "first_time": None, "last_time": None,
        "pseudonym_key": version, "at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    producer = AIOKafkaProducer(**admin.client_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(SHARING_AUDIT_TOPIC, json.dumps(record).encode(), key=party.encode())
    finally:
        await producer.stop()


def test_a_missing_key_file_stops_the_stage_and_its_successor_is_numbered_above_every_key_used(
    local_stack: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    asyncio.run(_audit_release_under(kafka_admin, f"keyloss-{run}", NAMED))
    key_file = tmp_path / "lost" / "keys.json"
    env = {"ZC_PSEUDONYM_KEY_FILE": str(key_file), "ZC_SHARING_GROUP": f"zc-sharing-keyloss-{run}"}

    refused = _zerocarbon("share", env=env)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert f"{key_file} is missing" in refused.stderr and "restore the file" in refused.stderr
    assert not key_file.exists()  # no key made behind the operator's back

    rotated = _zerocarbon("agreements", "rotate-key", env=env)
    assert rotated.returncode == 0, rotated.stderr
    keys = read_keys(key_file)
    assert keys.current > NAMED and list(keys.keys) == [keys.current], keys.current
    assert f"a new key, version {keys.current}" in rotated.stdout

    stage = start_service(["share"], tmp_path / "share.log", env=env)  # the successor is taken
    try:
        assert f"pseudonyms under key version {keys.current}" in (tmp_path / "share.log").read_text()
    finally:
        stop_child(stage)
