#!/usr/bin/env bash
# Installs what the tests need and a bare machine may lack: the real services the integration tests start
# (mosquitto, victoria-metrics), the openssl CLI (the TLS tests' certificates) and the browser the console tests
# drive (chromium). The tests start their own instances on free loopback ports; nothing is left running.
#
# On a developer's machine a missing piece is a warning and the tests that need it skip, saying why. Under CI
# (CI set, as .ci/run does) nothing may be missing: a failed install, or anything still missing after it, fails.
set -u
case "${CI:-}" in "" | 0 | false | no) ci=false ;; *) ci=true ;; esac

missing() {
  local need=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || need+=(chromium)  # tests/e2e/test_dashboard_browser.py
  echo "${need[*]}"
}

# apt-get update: a flaky mirror gets three tries; if it still fails, the install says whether that mattered.
apt_update() {
  local attempt
  for attempt in 1 2 3; do
    apt-get update -qq >/dev/null && return 0
    echo "apt-get update failed (attempt $attempt of 3)" >&2
    [ "$attempt" = 3 ] || sleep $((attempt * 10))
  done
  echo "warning: apt-get update failed 3 times; installing from the package lists there are" >&2
}

# fail_or_warn <what is wrong> <what that means outside CI>
fail_or_warn() {
  if [ "$ci" = true ]; then
    echo "error: $1 (CI: nothing the tests need may be missing)" >&2
    exit 1
  fi
  echo "warning: $1; $2" >&2
}
SKIPPED="the tests that need them will be skipped"

need=$(missing)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $need"
  apt_update
  # shellcheck disable=SC2086 # one word per package
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; then
    need=$(missing)
    [ -z "$need" ] || fail_or_warn "$need still missing after the install" "$SKIPPED"
  else
    fail_or_warn "apt-get install $need failed" "$SKIPPED"
  fi
elif [ -n "$need" ]; then
  fail_or_warn "$need not installed (as root with apt-get this script installs them)" "$SKIPPED"
fi
# The console is built and tested with npm (Node.js 20.19 or newer); Debian's own nodejs is too old to install here.
command -v npm >/dev/null 2>&1 || fail_or_warn "npm (Node.js 20.19 or newer) is not installed" \
  "the console is neither built nor unit-tested, and its browser tests fail"
exit 0
