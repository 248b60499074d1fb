#!/usr/bin/env bash
# Installs the real services the integration tests start (mosquitto, victoria-metrics) and the browser the
# console tests drive (chromium) when they are missing.
# The tests start their own instances on free loopback ports; nothing is left running.
set -u
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the browser tests (tests/e2e/test_dashboard_browser.py)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: ${need[*]} not installed; the tests that need them will be skipped" >&2
  fi
fi
exit 0
