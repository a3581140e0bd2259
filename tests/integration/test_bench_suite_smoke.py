"""The benchmark suite (bench/suite.py, `make bench`) runs on a tiny workload against the real
stack and writes its JSON. Figures are never asserted here (the machine is shared); what is
asserted is that every part ran, counted every reading and agrees with its peers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_suite_runs_on_a_tiny_workload_and_writes_its_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/suite.py", "--tiny", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [saved] = list(tmp_path.glob("suite-tiny-*.json"))
    results = json.loads(saved.read_text())

    assert {"cpu", "cores", "memory_gib", "kernel", "python"} <= results["machine"].keys()
    readings = results["workload"]["readings"]
    assert readings > 0

    stages = {stage["stage"]: stage for stage in results["stages"]}
    assert stages.keys() == {"validation", "enrichment_aggregation", "bridge", "sink"}
    assert stages["validation"]["accepted"] == readings
    assert stages["enrichment_aggregation"]["readings_per_cpu_second"] > 0
    assert stages["bridge"]["forwarded"] == stages["bridge"]["readings"]
    assert stages["sink"]["points_written"] > 0

    parts = [limit["part"] for limit in results["limits"]]
    assert len(parts) == 4 and any("Mosquitto" in p for p in parts) and any("InfluxDB" in p for p in parts)

    peers = results["peers"]
    assert [i["readings"] for i in peers["implementations"]] == [readings] * 3
    quix, naive = peers["same_results"]["quix"], peers["same_results"]["naive_faust"]
    assert quix["windows_compared"] > 0 and quix["differ"] == 0 and quix["closed_by_peer_only"] == 0
    assert naive["windows_compared"] > 0 and naive["differ"] == 0
    assert peers["ours_over_quix"]["readings_per_second"] > 0

    e2e = results["end_to_end"]
    assert [run["offered_readings_per_second"] for run in e2e["runs"]] == [500, None]
    for run in e2e["runs"]:
        assert run["all_visible"], run
        assert run["acknowledged_by_mosquitto"] == run["readings"]
        assert run["latency_seconds"]["markers_seen"] == run["markers"] > 0
        assert 0 < run["latency_seconds"]["p50"] <= run["latency_seconds"]["p99"]
    assert e2e["validation_counters"]["dead_lettered"] == 0
    footprint = e2e["footprint"]
    assert footprint["readings"] == sum(run["readings"] for run in e2e["runs"])
    assert {"bridge", "worker", "sink"} <= footprint["peak_rss_mb"].keys()
    assert footprint["kafka_bytes_written_per_million_readings_total"] > 0
    assert footprint["influxdb_wal_bytes_per_million_readings"] > 0
    assert {"bridge", "worker", "sink"} == footprint["idle_percent_of_a_core"].keys()

    assert len(results["targets"]) == 8
    # Every target is measured, but the latency at 5 000 readings/s: the tiny run offers 500.
    unmeasured = [target["target"] for target in results["targets"] if target["measured"] is None]
    assert len(unmeasured) == 1 and "5 000" in unmeasured[0], unmeasured
    assert results["table_markdown"].startswith("Suite run ")
    assert results["clean_up"]["bench_topics_deleted"] > 0
