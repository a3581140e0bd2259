"""An install step: the environment it runs in, and the key of what it builds.

A toolchain reads dozens of variables that change where it writes and how it builds
(``CARGO_TARGET_DIR``, ``RUSTFLAGS``, ``GOFLAGS``, ``PIP_*``, ``MAVEN_OPTS``...). Inherited
by accident, one of them broke the influxd build on every new machine while CI stayed green
on its warm cache. So a step's environment is built from an allow-list, never inherited
whole, and what a step builds lives in a folder keyed by a hash of everything that decides
the build (its inputs, its toolchains' versions, this policy): change any of them and the
step builds again from an empty build folder, on a developer's machine as in CI. Downloads
(Go modules, crates, Maven artifacts, wheels) stay in the toolchains' own caches.

Standard library only: the Makefile runs it with the system Python before ``.venv`` exists::

    python3 stack/install_step.py NAME --input FILE... [--toolchain 'rustc --version']...
        [--set VAR=VALUE]... [--build-dir-var VAR] -- COMMAND...
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# What a step may take from the caller, and why: where programs and the user's files are,
# the locale, whom to trust and how to reach the registries, where each toolchain is installed
# and where its downloads come from. Nothing here changes what a build produces.
PASSED_THROUGH: frozenset[str] = frozenset(
    {
        # the session
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR", "TZ", "LANG", "LANGUAGE",
        # trust and network
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "PIP_CERT",
        "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        # where our installs, the toolchains' configuration files and download caches are
        "ZC_CACHE_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "GOENV", "PIP_CONFIG_FILE",
        "GOPATH", "GOMODCACHE",
        # where the toolchains are installed (rustup's proxies find their toolchain there)
        "CARGO_HOME", "RUSTUP_HOME", "JAVA_HOME", "GOROOT",
        # where downloads come from
        "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE",
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT",
        "npm_config_registry", "npm_config_cafile", "npm_config_proxy", "npm_config_https_proxy",
    }
)  # fmt: skip
# Cargo's network and registry settings (proxies, mirrors, timeouts): where crates come from.
PASSED_THROUGH_PREFIXES: tuple[str, ...] = ("LC_", "CARGO_HTTP_", "CARGO_NET_", "CARGO_REGISTRIES_")

# Set for every step, whatever the caller had. Environment variables win over the
# toolchains' own configuration files, which stay read for what they say about registries
# and trust (a mirror in pip.conf, GOPROXY in Go's env file) but no longer decide the build.
COMMON_SETTINGS: Mapping[str, str] = {
    "GOFLAGS": "-buildvcs=false",
    "GOTOOLCHAIN": "local",
    "GOWORK": "off",
    "GO111MODULE": "on",
    "CGO_ENABLED": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONNOUSERSITE": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}

KEY_LENGTH = 12


def step_environment(
    inherited: Mapping[str, str], settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of ``inherited``, the common settings, then the step's own."""
    env = {
        name: value
        for name, value in inherited.items()
        if name in PASSED_THROUGH or name.startswith(PASSED_THROUGH_PREFIXES)
    }
    env.update(COMMON_SETTINGS)
    env.update(settings or {})
    return env


def default_cache_dir(inherited: Mapping[str, str]) -> Path:
    """``$ZC_CACHE_DIR``, else ``$XDG_CACHE_HOME/zerocarbon``, else ``~/.cache/zerocarbon``."""
    if inherited.get("ZC_CACHE_DIR"):
        return Path(inherited["ZC_CACHE_DIR"]).expanduser()
    xdg = inherited.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "zerocarbon"


def _toolchain_version(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The first line ``argv`` prints on stdout, or "unavailable": not its stderr, where
    rustup reports a toolchain it installs on first use (the key must not move with it)."""
    try:
        done = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)
    except OSError:
        return f"{' '.join(argv)}: unavailable"
    first = done.stdout.strip().splitlines()[:1]
    return f"{' '.join(argv)}: {first[0] if done.returncode == 0 and first else 'unavailable'}"


def _policy() -> bytes:
    """The environment policy as data: a comment or a new option here rebuilds nothing."""
    return repr((sorted(PASSED_THROUGH), PASSED_THROUGH_PREFIXES, sorted(COMMON_SETTINGS.items()))).encode()


@dataclass(frozen=True)
class InstallStep:
    """One install step: its name, the files and toolchains that decide its build, its settings."""

    name: str
    inputs: Sequence[Path] = ()
    toolchains: Sequence[Sequence[str]] = ()
    settings: Mapping[str, str] = field(default_factory=dict)
    # Values, not files, that decide the build (a version chosen by configuration).
    values: Sequence[str] = ()

    def environment(
        self, inherited: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment the step's commands run in."""
        base = os.environ if inherited is None else inherited
        return step_environment(base, {**self.settings, **(extra or {})})

    def key(self, inherited: Mapping[str, str] | None = None) -> str:
        """Hash of the inputs' contents, the values, the toolchains' versions and the policy."""
        digest = hashlib.sha256()
        digest.update(_policy())
        digest.update(repr(sorted(self.settings.items())).encode())
        for value in self.values:
            digest.update(b"\0value\0" + value.encode())
        for path in self.inputs:
            digest.update(b"\0file\0" + path.name.encode() + b"\0" + path.read_bytes())
        env = self.environment(inherited)
        for argv in self.toolchains:
            digest.update(b"\0tool\0" + _toolchain_version(argv, env).encode())
        return digest.hexdigest()[:KEY_LENGTH]


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock: two clones (or CI and a developer) build one key at a time."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="stack/install_step.py",
        description="Run COMMAND as install step NAME: in an environment built from an allow-list "
        "(toolchain variables such as CARGO_TARGET_DIR, RUSTFLAGS, GOFLAGS or PIP_* are not "
        "inherited), optionally with a build folder keyed by a hash of the step's inputs and "
        "toolchains, so that a changed input builds from an empty folder.",
    )
    parser.add_argument("name", help="the step's name (build folder: <cache>/build/<name>-<key>)")
    parser.add_argument(
        "--input", action="append", default=[], type=Path, help="a file that decides the build"
    )
    parser.add_argument(
        "--toolchain", action="append", default=[], help="a version command, e.g. 'rustc --version'"
    )
    parser.add_argument("--set", action="append", default=[], help="VAR=VALUE set for the step")
    parser.add_argument(
        "--build-dir-var", help="variable set to the keyed build folder (e.g. CARGO_TARGET_DIR)"
    )
    parser.add_argument("--print-key", action="store_true", help="print the step's key and exit")
    if "--" in argv:
        split = list(argv).index("--")
        options, command = list(argv[:split]), list(argv[split + 1 :])
    else:
        options, command = list(argv), []
    args = parser.parse_args(options)
    if not command and not args.print_key:
        parser.error("give the command to run after --")
    return args, command


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: run one install step's command (see the module's docstring)."""
    args, command = _parse(sys.argv[1:] if argv is None else argv)
    settings = dict(item.split("=", 1) for item in args.set)
    step = InstallStep(
        name=args.name,
        inputs=tuple(args.input),
        toolchains=tuple(tuple(t.split()) for t in args.toolchain),
        settings=settings,
    )
    key = step.key()
    if args.print_key:
        print(key)
        return 0
    cache = default_cache_dir(os.environ)
    extra: dict[str, str] = {}
    lock = cache / "build" / f".{args.name}.lock"
    if args.build_dir_var:
        build_dir = cache / "build" / f"{args.name}-{key}"
        build_dir.mkdir(parents=True, exist_ok=True)
        extra[args.build_dir_var] = str(build_dir)
        lock = build_dir / ".lock"
    with exclusive(lock):
        return subprocess.run(command, env=step.environment(extra=extra), check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
