"""InfluxDB 2 (HTTP API v2 with Flux), built once from its Go module and run locally."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from stack.errors import StackError
from stack.influx_provisioning import InfluxProvisioning, provision
from stack.install_step import InstallStep, exclusive
from stack.layout import service_dirs
from stack.service import LocalService
from stack.stack_config import StackConfig

BUILD_SCRIPT = Path(__file__).resolve().parent / "install" / "build_influxd.sh"


class InfluxDBServer(LocalService):
    """``influxd`` on the loopback, set up with the org, bucket and token of the configuration."""

    name = "influxdb"
    ready_timeout = 60.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(service_dirs(config.home, self.name, config.influx_data_dir))
        self.config = config
        self.build = InstallStep(
            name="influxd",
            inputs=(BUILD_SCRIPT,),
            values=(config.influx_version,),
            toolchains=(
                ("go", "version"),
                ("rustc", "--version"),
                ("cargo", "--version"),
                ("cc", "--version"),
            ),
            # flux pins Rust 1.72 in rust-toolchain.toml, which rustup cannot download here.
            settings={"RUSTUP_TOOLCHAIN": "stable"},
        )

    @cached_property
    def install_dir(self) -> Path:
        """Keyed by the build's inputs: a new script, version or toolchain builds afresh."""
        return self.config.cache_dir / f"influxdb-{self.config.influx_version}-{self.build.key()}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.config.bind_host}:{self.config.influx_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.config.influx_port,)

    @property
    def binary(self) -> str:
        return str(self.install_dir / "influxd")

    def install(self) -> None:
        """Compile influxd (Go + libflux in Rust) once per key; later runs reuse it."""
        if (self.install_dir / "influxd").exists():
            return
        # Two clones starting their stacks at once build it once: the second waits and reuses.
        with exclusive(self.install_dir.with_name(self.install_dir.name + ".lock")):
            if not (self.install_dir / "influxd").exists():
                self._build()

    def _build(self) -> None:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), self.config.influx_version, str(self.install_dir)],
            env=self.build.environment(),
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"building influxd {self.config.influx_version} failed (exit {result.returncode}); "
                "the output above shows the failing step. It needs go, cargo (rustup) and "
                "network access to the Go module proxy and crates.io."
            )

    def configure(self) -> None:
        (self.dirs.data / "engine").mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[Sequence[str], Mapping[str, str] | None]:
        data = self.dirs.data
        return [
            self.binary,
            f"--bolt-path={data / 'influxd.bolt'}",
            f"--engine-path={data / 'engine'}",
            f"--sqlite-path={data / 'influxd.sqlite'}",
            f"--http-bind-address={self.config.bind_host}:{self.config.influx_port}",
            "--reporting-disabled",
            "--log-level=info",
        ], None

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: bool = False
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Token {self.config.influx_token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def probe(self) -> tuple[bool, str | None, str]:
        try:
            status, health = self._request("GET", "/health")
        except (OSError, ValueError) as exc:
            return False, None, f"/health unreachable: {exc}"
        ok = status == 200 and health.get("status") == "pass"
        return ok, health.get("version"), f"/health: {health.get('status')} {health.get('message', '')}"

    @property
    def provisioning(self) -> InfluxProvisioning:
        """What setup makes here with the operator token: the buckets and the scoped tokens."""
        c = self.config
        return InfluxProvisioning(
            url=self.endpoint,
            operator_token=c.influx_token,
            org=c.influx_org,
            buckets=c.influx_buckets,
            tokens_dir=c.influx_tokens_dir,
        )

    def after_ready(self) -> None:
        """Onboard once (user, org, bucket, the operator token we configure), then set up the
        buckets and the scoped tokens at every start: a stack home made before them gets them."""
        self._onboard()
        done = provision(self.provisioning)
        changed = {what: how for what, how in done.items() if how != "kept"}
        if changed:
            print(f"[stack] influxdb setup: {changed}", flush=True)

    def _onboard(self) -> None:
        _, setup = self._request("GET", "/api/v2/setup")
        if not setup.get("allowed"):
            self._check_token()
            return
        c = self.config
        status, answer = self._request(
            "POST",
            "/api/v2/setup",
            {
                "username": c.influx_username,
                "password": c.influx_password,
                "org": c.influx_org,
                "bucket": c.influx_bucket,
                "token": c.influx_token,
            },
        )
        if status != 201:
            raise StackError(f"InfluxDB onboarding failed ({status}): {answer}")

    def _check_token(self) -> None:
        status, answer = self._request("GET", f"/api/v2/orgs?org={self.config.influx_org}", token=True)
        if status != 200 or not answer.get("orgs"):
            raise StackError(
                f"InfluxDB in {self.dirs.data} was set up with another token or org "
                f"({status}: {answer.get('message', answer)}). Set ZC_INFLUX_TOKEN/ZC_INFLUX_ORG "
                f"to match, or `zerocarbon stack down` and delete {self.dirs.data} to start afresh."
            )
