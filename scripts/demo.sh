#!/usr/bin/env bash
# README command 1: install, then run the embedded default (simulated Binance + MEXC, paper mode).
# Extra arguments go to `draizer run` (default: --duration 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ "$#" -eq 0 ]; then set -- --duration 30; fi
exec .venv/bin/draizer run "$@"
