"""The Grafana dashboards' panel queries (docker/grafana/dashboards/), and each as it can run
outside Grafana: a Flux query against the stack's InfluxDB, with the dashboard's time range
given; a PromQL expression against the stack's Prometheus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[1] / "docker" / "grafana" / "dashboards").glob("*.json")
)


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    query: str

    def runnable(self, bucket: str, minute_bucket: str, since: str = "-2d") -> str:
        """The query with Grafana's time range variables defined (from ``since`` to now) and
        the dashboards' buckets named as the stack at hand calls them."""
        query = self.query.replace('bucket: "indicators_1m"', f'bucket: "{minute_bucket}"')
        query = query.replace('bucket: "indicators"', f'bucket: "{bucket}"')
        return f"v = {{timeRangeStart: {since}, timeRangeStop: now(), windowPeriod: 1m}}\n{query}"


def panels(path: Path) -> list[Panel]:
    """Every Flux query of a dashboard (its InfluxDB panels), with its panel's title."""
    return _targets(path, "query")


def prometheus_panels(path: Path) -> list[Panel]:
    """Every PromQL expression of a dashboard (its Prometheus panels), with its panel's title."""
    return _targets(path, "expr")


def _targets(path: Path, key: str) -> list[Panel]:
    dashboard = json.loads(path.read_text())
    return [
        Panel(path.name, panel["title"], target[key])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if key in target
    ]
