"""Prometheus from Debian's package, scraping the service's processes and evaluating its alerts.

Optional (``ZC_PROMETHEUS=true``): the stack runs without it. Its scrape targets are not
listed in its configuration: each bridge, sink and worker registers itself in the targets
folder when its /metrics is bound (config/metrics_targets.py), and Prometheus' file
discovery follows the folder. Its rules are stack/alert_rules.py's, the deployment's own.
On loopback, as every server of the local stack, and on a port of its own (9479): Debian's
package also installs a system service on Prometheus' usual 9090.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace

from stack.alert_rules import rules_text
from stack.debian_packages import ensure_packages
from stack.errors import StackError
from stack.layout import service_dirs
from stack.service import LocalService, write_if_changed
from stack.stack_config import StackConfig

PROMETHEUS = "/usr/bin/prometheus"
PACKAGES = {"prometheus": PROMETHEUS}  # promtool comes with it


class PrometheusServer(LocalService):
    name = "prometheus"
    ready_timeout = 60.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(service_dirs(config.home, self.name, None))
        self.config = config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.prometheus_port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.config.bind_host}:{self.config.prometheus_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.config.prometheus_port,)

    def install(self) -> None:
        ensure_packages(PACKAGES)

    def _configuration(self) -> dict[str, object]:
        c = self.config
        every = f"{c.prometheus_scrape_seconds:g}s"
        return {
            "global": {"scrape_interval": every, "evaluation_interval": every},
            "rule_files": [str(self.dirs.config_dir / "alert-rules.json")],
            "scrape_configs": [
                {
                    "job_name": "zerocarbon",
                    "file_sd_configs": [
                        {"files": [str(c.metrics_targets_dir / "*.json")], "refresh_interval": "30s"}
                    ],
                }
            ],
        }

    def configure(self) -> None:
        self.config.metrics_targets_dir.mkdir(parents=True, exist_ok=True)
        write_if_changed(
            self.dirs.config_dir / "alert-rules.json", rules_text(self.config.prometheus_alert_holds)
        )
        write_if_changed(
            self.dirs.config_dir / "prometheus.json", json.dumps(self._configuration(), indent=2) + "\n"
        )

    def configuration_changed(self) -> bool:
        written = self.dirs.config_dir / "prometheus.json"
        rules = self.dirs.config_dir / "alert-rules.json"
        return not (
            written.exists()
            and json.loads(written.read_text()) == self._configuration()
            and rules.exists()
            and rules.read_text() == rules_text(self.config.prometheus_alert_holds)
        )

    def command(self) -> tuple[Sequence[str], Mapping[str, str] | None]:
        return (
            [
                PROMETHEUS,
                f"--config.file={self.dirs.config_dir / 'prometheus.json'}",
                f"--storage.tsdb.path={self.dirs.data}",
                f"--storage.tsdb.retention.time={self.config.prometheus_retention_days}d",
                f"--web.listen-address={self.config.bind_host}:{self.config.prometheus_port}",
            ],
            None,
        )

    def probe(self) -> tuple[bool, str | None, str]:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as ready:
                if ready.status != 200:
                    return False, None, f"/-/ready answered {ready.status}"
            with urllib.request.urlopen(f"{self.url}/api/v1/status/buildinfo", timeout=2) as info:
                version = json.loads(info.read())["data"]["version"]
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            return False, None, str(exc)
        return True, str(version), "ready"

    def query(self, expr: str) -> list[dict[str, object]]:
        """An instant query's result vector (what the integration test reads)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.loads(answer.read())
        if body.get("status") != "success":
            raise StackError(f"Prometheus refused {expr!r}: {body.get('error')}")
        return list(body["data"]["result"])

    def firing(self) -> set[str]:
        """The names of the alerts firing now."""
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=5) as answer:
            alerts = json.loads(answer.read())["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def without_holds(config: StackConfig) -> StackConfig:
    """The same stack whose Prometheus fires alerts as soon as their condition holds."""
    return replace(config, prometheus_alert_holds=False)
