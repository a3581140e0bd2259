"""kcat that can log in: Debian 12's kcat run with a librdkafka that speaks SCRAM to Kafka 4.

Debian 12's kcat links librdkafka 2.0.2, whose SCRAM client-final message Kafka 4.x refuses
(confluentinc/librdkafka#4895, fixed in 2.6.1), and no Debian 12 repository has a later one.
librdkafka's source comes from crates.io instead, where the Rust binding ``rdkafka-sys``
vendors it (pinned here by version and checksum); it is built once, as a shared library only,
into a cache folder keyed by this file and the C compiler, and Debian's kcat runs against it:
the soname (``librdkafka.so.1``) and the C ABI are the same across librdkafka 2.x.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import urllib.request
from functools import cached_property
from pathlib import Path

from stack.debian_packages import ensure_packages
from stack.errors import StackError
from stack.install_step import InstallStep, exclusive

CRATE = "rdkafka-sys"
CRATE_VERSION = "4.10.0+2.12.1"  # vendors librdkafka 2.12.1
CRATE_SHA256 = "e234cf318915c1059d4921ef7f75616b5219b10b46e9f3a511a15eb4b56a3f77"  # crates.io index cksum
CRATE_URL = f"https://static.crates.io/crates/{CRATE}/{CRATE}-{CRATE_VERSION.replace('+', '%2B')}.crate"
DEBIAN_KCAT = Path("/usr/bin/kcat")
# Debian package -> a file it provides: the headers librdkafka's SSL and zlib support build on.
BUILD_PACKAGES = {"libssl-dev": "/usr/include/openssl/ssl.h", "zlib1g-dev": "/usr/include/zlib.h"}
# SSL (for SASL_SSL and SCRAM) and zlib; nothing else a command-line client of ours needs.
CONFIGURE = (
    "--disable-gssapi", "--disable-zstd", "--disable-curl", "--disable-lz4-ext",
    "--disable-syslog", "--disable-debug-symbols",
)  # fmt: skip


class KcatClient:
    """Where the librdkafka for kcat is built, and the command line that uses it."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.build = InstallStep(
            name="librdkafka",
            inputs=(Path(__file__),),
            values=(CRATE_VERSION, CRATE_SHA256),
            toolchains=(("cc", "--version"),),
        )

    @cached_property
    def install_dir(self) -> Path:
        return self.cache_dir / f"librdkafka-{CRATE_VERSION.split('+')[1]}-{self.build.key()}"

    @property
    def library(self) -> Path:
        return self.install_dir / "lib" / "librdkafka.so.1"

    @property
    def wrapper(self) -> Path:
        """A stable path for people: ``<cache>/bin/kcat`` runs kcat with this librdkafka."""
        return self.cache_dir / "bin" / "kcat"

    def argv(self) -> list[str]:
        """``kcat`` with the librdkafka built here, which is built first if it is not yet."""
        self.install()
        return ["env", f"LD_LIBRARY_PATH={self.library.parent}", str(DEBIAN_KCAT)]

    def install(self) -> None:
        if not DEBIAN_KCAT.exists():
            raise StackError(f"kcat is missing ({DEBIAN_KCAT}): apt-get install kcat")
        if not self.library.exists():
            with exclusive(self.install_dir.with_name(self.install_dir.name + ".lock")):
                if not self.library.exists():
                    self._build()
        script = f'#!/bin/sh\nLD_LIBRARY_PATH="{self.library.parent}" exec {DEBIAN_KCAT} "$@"\n'
        if not self.wrapper.exists() or self.wrapper.read_text() != script:
            self.wrapper.parent.mkdir(parents=True, exist_ok=True)
            self.wrapper.write_text(script)
            self.wrapper.chmod(0o755)

    def _crate(self) -> Path:
        """The crate, downloaded once into the cache and checked against its pinned checksum."""
        path = self.cache_dir / "downloads" / f"{CRATE}-{CRATE_VERSION}.crate"
        if not path.exists() or _sha256(path) != CRATE_SHA256:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            print(f"[kcat] downloading librdkafka's source, {CRATE} {CRATE_VERSION}", flush=True)
            try:
                with urllib.request.urlopen(CRATE_URL, timeout=120) as response, partial.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                raise StackError(f"could not download {CRATE_URL}: {exc}") from exc
            if _sha256(partial) != CRATE_SHA256:
                partial.unlink()
                raise StackError(f"{CRATE_URL} does not have the pinned checksum {CRATE_SHA256}")
            partial.rename(path)
        return path

    def _build(self) -> None:
        ensure_packages(BUILD_PACKAGES)
        crate = self._crate()
        work = self.install_dir.with_name(self.install_dir.name + ".build")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with tarfile.open(crate) as archive:
            archive.extractall(work, filter="data")
        source = work / f"{CRATE}-{CRATE_VERSION}" / "librdkafka"
        print(f"[kcat] building librdkafka {CRATE_VERSION.split('+')[1]} for kcat (once)", flush=True)
        env = self.build.environment()
        for argv in (["./configure", *CONFIGURE], ["make", "-j2", "-C", "src", "librdkafka.so.1"]):
            result = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StackError(
                    f"building librdkafka for kcat failed at `{' '.join(argv)}` (exit "
                    f"{result.returncode}); it needs a C compiler and libssl-dev:\n"
                    f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
        self.library.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "src" / "librdkafka.so.1", self.library)
        shutil.rmtree(work, ignore_errors=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
