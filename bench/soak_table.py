"""The soak's markdown: one row per sample (printed as each is taken), then the verdict and
the live probe's delays per phase."""

from __future__ import annotations

from typing import Any

from report_table import _n

SERVICES = ("bridge", "worker", "sink")
STACK = ("kafka", "mosquitto", "influxdb")
STAGES = ("raw", "typed", "indicators")

HEADER = (
    "| t (min) | phase | worker readings/s | RSS MB bridge / worker / sink "
    "| RSS MB kafka / mosquitto / influxdb "
    "| CPU % bridge / worker / sink | CPU % kafka / mosquitto / influxdb / load "
    "| lag raw / typed / indicators (records) | Mosquitto store / retained (messages) "
    "| probe delay p50 / max (s) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _joined(processes: dict[str, dict[str, Any]], names: tuple[str, ...], field: str) -> str:
    return " / ".join(_n(processes.get(name, {}).get(field)) for name in names)


def sample_row(sample: dict[str, Any]) -> str:
    p = sample["processes"]
    cells = [
        f"{sample['t_seconds'] / 60:.1f}",
        sample["phase"],
        _n(sample.get("worker_readings_per_second")),
        _joined(p, SERVICES, "rss_mb"),
        _joined(p, STACK, "rss_mb"),
        _joined(p, SERVICES, "cpu_percent"),
        _joined(p, (*STACK, "load"), "cpu_percent"),
        " / ".join(_n(sample["lag"][stage]["records"]) for stage in STAGES),
        f"{_n(sample.get('mosquitto_store_messages'))} / {_n(sample.get('mosquitto_retained_messages'))}",
        _probe_cell(sample.get("probe_delay_seconds")),
    ]
    return "| " + " | ".join(cells) + " |"


def _probe_cell(delays: dict[str, Any] | None) -> str:
    """The live probe's readings whose update came since the previous sample: p50 / max."""
    if not delays or not delays["count"]:
        return "—"
    return f"{_n(delays['p50'])} / {_n(delays['max'])}"


def probe_table(probe: dict[str, Any]) -> str:
    """The live probe's delays, publish -> update on zc.indicators, per phase of the soak."""
    head = (
        f"Live probe: {probe['device']} ({probe['topic']}), a reading every {probe['interval_seconds']:g} s; "
        f"{_n(probe['published'])} published, {_n(probe['matched'])} found on zc.indicators. Delay from "
        "the publication to the first update including it on zc.indicators (its Kafka timestamp); "
        "the last column, to the probe's consumer having it."
    )
    rows = [
        head,
        "",
        "| phase | readings | found | p50 (s) | p95 (s) | p99 (s) | max (s) | max, read by the probe (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, p in probe["per_phase"].items():
        d = p["indicators"]
        delays = [d["p50"], d["p95"], d["p99"], d["max"], p["received"]["max"]]
        cells = [phase, p["published"], p["matched"], *delays]
        rows.append("| " + " | ".join(_n(c) for c in cells) + " |")
    return "\n".join(rows)


def verdict_table(verdict: dict[str, Any]) -> str:
    rows = ["| rule | measured | passed |", "|---|---|---|"]
    for name, m in verdict["rss_growth"].items():
        measured = (
            f"{_n(m['at_warmup_mb'])} → {_n(m['at_end_mb'])} MB ({m['growth_percent']:+.1f} %, limit "
            f"{m['limit_percent']:g} %)"
            if "growth_percent" in m
            else m.get("note", "")
        )
        rows.append(f"| RSS growth after the warm-up, {name} | {measured} | {_n(m['passed'])} |")
    for name, g in verdict["lag_bounded"].items():
        measured = (
            f"max {_n(g['max_first_half_records'])} then {_n(g['max_second_half_records'])} records "
            f"(bound {_n(g['bound_records'])})"
            if "bound_records" in g
            else g.get("note", "")
        )
        rows.append(f"| lag bounded, {name} | {measured} | {_n(g['passed'])} |")
    drained = verdict["drained"]
    after = drained["after_load_seconds"]
    rows.append(
        f"| every group at the end of its topics after the load | "
        f"{f'{after:.0f} s after the load' if after is not None else 'not within the settle timeout'} | "
        f"{_n(drained['passed'])} |"
    )
    balance = verdict["reconciliation"]
    measured = (
        f"counters moved {balance['counters_moved']}, simulator expects {balance['expected']}"
        if "expected" in balance
        else balance.get("note", "")
    )
    rows.append(f"| reconciliation | {measured} | {_n(balance['passed'])} |")
    rows.append(f"| **soak** | | **{_n(verdict['passed'])}** |")
    return "\n".join(rows)


def markdown(results: dict[str, Any]) -> str:
    machine, options = results["machine"], results["options"]
    head = (
        f"Soak {results['when']} on {machine['cpu']} ({machine['cores']} cores): "
        f"{options['rate']:g} readings/s offered for {options['minutes']:g} min, "
        f"{options['devices']} devices, "
        f"warm-up {options['warmup_minutes']:g} min, a sample every {options['sample_seconds']:g} s."
    )
    rows = [sample_row(s) for s in results["samples"]]
    parts = [head, "", HEADER, *rows, ""]
    if results.get("verdict") is not None:
        parts.append(verdict_table(results["verdict"]))
    if results.get("live_probe") is not None:
        parts += ["", probe_table(results["live_probe"])]
    return "\n".join(parts)
