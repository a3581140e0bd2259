#!/usr/bin/env bash
# Build a real influxd (InfluxDB 2 HTTP API, with Flux) from its Go module, once per machine.
# No Debian or PyPI package ships one, and the machine reaches only package registries,
# so we compile it: Go module proxy for the server, crates.io for libflux (Rust).
# Usage: build_influxd.sh VERSION DEST_DIR   -> DEST_DIR/influxd
#
# `zerocarbon stack install` runs it in an environment of its own (stack/install_step.py):
# no CARGO_*, RUSTFLAGS or GO* variable of the caller's reaches it. That matters: flux's
# pkg-config wrapper looks for libflux.a under the flux module's own target folder, so an
# inherited CARGO_TARGET_DIR made every build on a machine with empty caches fail to link.
set -euo pipefail

version="${1:?usage: build_influxd.sh VERSION DEST_DIR}"
dest="${2:?usage: build_influxd.sh VERSION DEST_DIR}"

if [ -x "$dest/influxd" ]; then
  echo "influxd $version already built in $dest"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/zerocarbon-influxd-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Go's build cache for this build only: a changed input (DEST_DIR's name is keyed on them)
# builds from nothing, as on a new machine. Downloads stay in Go's and Cargo's own caches.
export GOCACHE="$work/go-build"

echo "[influxd] downloading github.com/influxdata/influxdb/v2@$version from the Go module proxy"
dir="$(cd "$work" && go mod download -json "github.com/influxdata/influxdb/v2@$version" \
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
# `go install pkg@version` refuses modules whose go.mod has replace directives: build in a copy.
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"

echo "[influxd] building the pkg-config wrapper that compiles libflux with cargo"
mkdir -p "$work/bin"
go build -o "$work/bin/pkg-config" github.com/influxdata/pkg-config

echo "[influxd] building influxd (first build of libflux takes several minutes)"
# Newer rustc turns libflux's lints into errors under its default `strict` feature (flux
# #5562, influxdb #25440). RUSTFLAGS=--cap-lints does not reach flux's build script, which
# compiles flux-core for the host when cargo is given --target, so a rustc wrapper caps
# the lints of every invocation instead; the upstream source stays untouched.
cat > "$work/bin/rustc-cap-lints" <<'WRAP'
#!/bin/sh
rustc="$1"; shift
case " $* " in *" --cap-lints"*) exec "$rustc" "$@" ;; esac
exec "$rustc" "$@" --cap-lints warn
WRAP
chmod +x "$work/bin/rustc-cap-lints"
export PATH="$work/bin:$PATH" PKG_CONFIG="$work/bin/pkg-config"
# The wrapper reads libflux.a from <flux>/libflux/target/<triple>/release, and runs cargo in
# <flux>/libflux: a relative target folder puts it there whatever a cargo config file says
# (`[build] target-dir` in $CARGO_HOME/config.toml would send it elsewhere, as the inherited
# CARGO_TARGET_DIR once did).
export CARGO_TARGET_DIR=target
export RUSTC_WRAPPER="$work/bin/rustc-cap-lints"
# flux pins Rust 1.72 in rust-toolchain.toml, which rustup cannot download here: use the
# machine's stable toolchain (tested with 1.95).
export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"
go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$work/influxd" ./cmd/influxd

mkdir -p "$dest"
mv "$work/influxd" "$dest/influxd.partial"
mv "$dest/influxd.partial" "$dest/influxd"
echo "[influxd] built $dest/influxd"
