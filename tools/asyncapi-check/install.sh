#!/usr/bin/env bash
# Install the official AsyncAPI parser once per user and parser version, outside the
# repository, and print the folder that holds node_modules and a copy of validate.mjs.
#
# Usage:  node "$(tools/asyncapi-check/install.sh)/validate.mjs" path/to/asyncapi.json
#
# The folder is $ZC_CACHE_DIR/asyncapi-parser-<version> (ZC_CACHE_DIR defaults to
# ${XDG_CACHE_HOME:-~/.cache}/zerocarbon, as for the rest of the local stack). A second run
# with the same package.json and package-lock.json installs nothing. Requires Node >= 18 and npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v node >/dev/null || { echo "install.sh: node not found; install Node.js >= 18" >&2; exit 127; }
command -v npm >/dev/null || { echo "install.sh: npm not found; install npm (Node.js >= 18)" >&2; exit 127; }

# The exact version pinned in package.json keys the cache folder.
version="$(node -p 'require(process.argv[1]).dependencies["@asyncapi/parser"]' "$here/package.json")"
cache_root="${ZC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zerocarbon}"
dest="$cache_root/asyncapi-parser-$version"
# The stamp changes whenever the manifest, the lockfile or this script does: a reinstall.
stamp="$(cat "$here/package.json" "$here/package-lock.json" "$here/install.sh" | sha256sum | cut -d' ' -f1)"

mkdir -p "$cache_root"
# Two test runs may install at the same time: the lock makes the second one wait and reuse.
exec 9>"$cache_root/.asyncapi-parser-$version.lock"
flock 9

if [ "$(cat "$dest/.installed" 2>/dev/null)" != "$stamp" ]; then
  work="$(mktemp -d "$cache_root/.asyncapi-parser-$version.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  echo "[asyncapi-check] installing @asyncapi/parser $version into $dest" >&2
  # --ignore-scripts: no dependency needs a build step, and one (@scarf/scarf) would only
  # send install telemetry. npm's output goes to stderr so stdout is only the folder.
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  echo "$stamp" >"$work/.installed"
  chmod 755 "$work"
  rm -rf "$dest"
  mv -T "$work" "$dest"
  trap - EXIT
fi

# Always refresh the script, so an edit to validate.mjs takes effect without a reinstall.
# ESM resolves imports from the script's own folder, hence the copy next to node_modules.
cp "$here/validate.mjs" "$dest/validate.mjs.partial"
mv -f "$dest/validate.mjs.partial" "$dest/validate.mjs"
echo "$dest"
