#!/usr/bin/env bash
# README command 2: install test dependencies (Debian's PostgreSQL and Redis included) and run every test.
# pytest's own exit code is the result: 5 ("no tests ran") fails like any other non-zero code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
EXTRAS=dev bash scripts/install.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
