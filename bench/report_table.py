"""The suite's results as markdown tables: targets, end to end, stages, limits, peers, footprint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _n(value: Any) -> str:
    """Numbers as the README writes them: thousands with a thin space, 3 significant decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value >= 100):
        return f"{round(value):,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table_lines(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_n(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    e2e, peers = results["end_to_end"], results["peers"]
    fp = e2e["footprint"]
    machine = results["machine"]
    size = "tiny workload (smoke)" if results["options"]["tiny"] else "full workload"
    out = [
        f"Suite run {results['when']} on {machine['cpu']} ({machine['cores']} cores), {size}; "
        f"{results['total_seconds']:.0f} s in all.",
        "",
    ]
    out += table_lines(
        ["target", "measured", "wanted", "met"],
        [[t["target"], t["measured"], t["wanted"], t["met"]] for t in results["targets"]],
    )
    out += table_lines(
        ["end to end, offered readings/s", "readings", "published/s", "publish → all visible (s)",
         "readings/s end to end", "tail (s)", "latency p50 / p95 / p99 / max (s)"],
        [
            [
                r["offered_readings_per_second"] or "max", r["readings"], r["published_readings_per_second"],
                r["publish_to_all_visible_seconds"], r["end_to_end_readings_per_second"], r["tail_seconds"],
                " / ".join(_n(r["latency_seconds"][q]) for q in ("p50", "p95", "p99", "max")),
            ]
            for r in e2e["runs"]
        ],
    )  # fmt: skip
    out += table_lines(
        ["stage alone", "readings", "rate", "unit"],
        [
            [s["stage"], s.get("readings", s.get("updates")), _stage_rate(s), _stage_unit(s)]
            for s in results["stages"]
        ],
    )
    out += table_lines(
        ["part's limit", "rate", "unit"],
        [[p["part"], *_limit_rate(p)] for p in results["limits"]],
    )
    out += table_lines(
        [
            "implementation (Kafka to Kafka, same records)",
            "readings/s",
            "readings per CPU-s",
            "same results as ours",
        ],
        [
            [i["implementation"], i["readings_per_second"], i["readings_per_cpu_second"], _same(peers, n)]
            for n, i in enumerate(peers["implementations"])
        ],
    )
    cpu = fp["cpu_seconds_per_million_readings"]
    out += table_lines(
        ["footprint per million readings (all end-to-end runs)", "value"],
        [
            *[[f"CPU-seconds, {name}", value] for name, value in cpu.items()],
            *[[f"peak RSS MB, {name}", value] for name, value in fp["peak_rss_mb"].items()],
            [
                "bytes written to Kafka (records: key, value, headers)",
                fp["kafka_bytes_written_per_million_readings_total"],
            ],
            [
                "bytes written to InfluxDB (its write-ahead log)",
                fp["influxdb_wal_bytes_per_million_readings"],
            ],
            [
                "bytes InfluxDB holds on disk for the run's buckets",
                fp["influxdb_disk_bytes_per_million_readings"],
            ],
            *[
                [f"idle, % of one core, {name}", value]
                for name, value in fp["idle_percent_of_a_core"].items()
            ],
        ],
    )
    return "\n".join(out)


def _stage_rate(stage: dict[str, Any]) -> Any:
    for key in ("readings_per_cpu_second", "readings_per_second", "updates_per_second"):
        if key in stage:
            return stage[key]
    return None


def _stage_unit(stage: dict[str, Any]) -> str:
    if "readings_per_cpu_second" in stage:
        return "readings per CPU-second (one core, no broker)"
    if "updates_per_second" in stage:
        return "indicator updates/s, Kafka to InfluxDB"
    return "readings/s, Mosquitto backlog to Kafka"


def _limit_rate(limit: dict[str, Any]) -> list[Any]:
    if "readings_per_second" in limit:
        return [limit["readings_per_second"], f"readings/s ({_n(limit['records_per_second'])} records/s)"]
    if "messages_per_second" in limit:
        return [limit["messages_per_second"], "messages/s"]
    return [limit["lines_per_second"], "lines/s"]


def _same(peers: dict[str, Any], index: int) -> str:
    if index == 0:
        return "—"
    check = peers["same_results"]["quix" if index == 1 else "naive_faust"]
    return f"{check['equal']}/{check['windows_compared']} windows equal"
