#!/usr/bin/env bash
# Make sure the browser of the browser tests (tests/e2e) is installed: Debian's Chromium at
# /usr/bin/chromium (or the one E2E_CHROMIUM names). Does nothing if it is there; else installs
# the `chromium` package with apt-get (running `apt-get update` first if the install fails),
# through sudo when not root. Playwright never downloads a browser. Exits non-zero, saying
# why, if Chromium cannot be had: the browser tests fail rather than skip without it.
set -uo pipefail
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
fail() {
  echo "Chromium is needed by the browser tests (tests/e2e) and is not installed at $CHROMIUM: $*" >&2
  exit 1
}
[ "$CHROMIUM" = /usr/bin/chromium ] || fail "E2E_CHROMIUM names a browser that is not there"
command -v apt-get >/dev/null 2>&1 || fail "no apt-get here; install Chromium with the system's package manager"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo; run: apt-get install -y chromium"
  as_root=(sudo)
fi
install() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
echo "==> installing Chromium (apt-get install chromium) for the browser tests"
if ! install; then
  echo "==> apt-get update, then installing Chromium again"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update \
    || fail "apt-get update failed"
  install || fail "apt-get install -y chromium failed"
fi
[ -x "$CHROMIUM" ] || fail "the chromium package installed no $CHROMIUM"
echo "==> $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
