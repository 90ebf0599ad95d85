#!/usr/bin/env bash
# Regenerate the Python protobuf modules from draizer's .proto files (grpcio-tools is a dev dependency).
# Usage: scripts/gen_proto.sh [OUT_DIR]   (default: next to the .proto; the tests pass a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
SRC=shared/venues/mexc/proto
OUT="${1:-$SRC}"
mkdir -p "$OUT"
"$PYTHON" -m grpc_tools.protoc -I "$SRC" --python_out="$OUT" --pyi_out="$OUT" "$SRC/push_data.proto"
