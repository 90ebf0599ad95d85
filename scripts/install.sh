#!/usr/bin/env bash
# Create .venv and install draizer into it (editable). EXTRAS=dev adds what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -n "${EXTRAS:-}" ]; then
  .venv/bin/python -m pip install --quiet -e ".[${EXTRAS}]"
else
  .venv/bin/python -m pip install --quiet -e .
fi
# Compile the detector's Numba kernels into their cache now: otherwise the first start spends ~15 s on it.
.venv/bin/python -m services.detector.precompile
