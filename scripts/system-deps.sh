#!/usr/bin/env bash
# Debian packages the tests use: PostgreSQL 15 and Redis 7 servers (started privately by the tests),
# Prometheus's `promtool` (package prometheus) to validate the /metrics exposition, and Chromium with its
# chromedriver for the web monitor's browser test (tests/test_web_monitor.py). Only what is missing is
# installed; no server is started here (the prometheus package's own daemon is not needed and not used).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
