#!/usr/bin/env bash
# Runs the browser end-to-end test of the console (tests/browser/console.test.mjs).
# Works from any directory. Env: MAMORI_BIN (default: target/debug/mamori of this
# checkout; build it first with `cargo build -p mamori`), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing chromium (Debian package)" >&2
  apt_install chromium
fi
# Japanese glyphs for readable screenshots (the console is Japanese first).
if command -v fc-list >/dev/null && [ -z "$(fc-list :lang=ja 2>/dev/null)" ]; then
  echo "run.sh: installing fonts-noto-cjk" >&2
  apt_install fonts-noto-cjk
fi

if [ -n "${MAMORI_BIN:-}" ]; then
  # A relative MAMORI_BIN means relative to where run.sh was called from.
  case "$MAMORI_BIN" in /*) ;; *) MAMORI_BIN="$PWD/$MAMORI_BIN" ;; esac
  export MAMORI_BIN
fi

cd "$here"
npm ci --no-audit --no-fund
# The scenario twice: loopback HTTP (the demo), then HTTPS on all addresses with the
# self-signed certificate, as a real installation serves it.
echo "run.sh: over HTTP on loopback" >&2
MAMORI_BROWSER_TLS=0 node --test console.test.mjs
echo "run.sh: over HTTPS (0.0.0.0, self-signed certificate, HTTP/2)" >&2
MAMORI_BROWSER_TLS=1 node --test console.test.mjs
