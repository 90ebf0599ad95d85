#!/usr/bin/env bash
# Re-record tests/fixtures/session.* from the simulator (both spot venues at once) and store the replay's
# expected results. Only needed when the wire formats or the detector change on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT=tests/fixtures
export DRAIZER_BINANCE_API_KEY=k DRAIZER_BINANCE_API_SECRET=s DRAIZER_MEXC_API_KEY=k DRAIZER_MEXC_API_SECRET=s
"$PY" - <<'PYEOF'
import msgspec
from pathlib import Path
from shared.config import default_config_path
data = msgspec.toml.decode(default_config_path().read_bytes())
data["symbols"] = data["symbols"][:6]
data["instance"] = "fixture"
data["sim"]["quotes_per_second"] = 800.0
data["sim"]["dislocation_probability"] = 0.03
for i, sv in enumerate(data["sim"]["venues"]):
    sv["ws_port"], sv["rest_port"] = 28701 + 10 * i, 28702 + 10 * i
for v, sv in zip(data["venues"], data["sim"]["venues"]):
    path = v["ws_url"].split("/", 3)[3]
    v["ws_url"] = f"ws://127.0.0.1:{sv['ws_port']}/{path}"
    v["rest_url"] = f"http://127.0.0.1:{sv['rest_port']}"
Path("tests/fixtures/session.toml").write_bytes(msgspec.toml.encode(data))
PYEOF
"$PY" -m services.sim --config "$OUT/session.toml" >/dev/null 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 100); do  # wait until the sim's REST port answers
  "$PY" -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:28702/api/v3/time", timeout=1)' 2>/dev/null && break
  sleep 0.1
done
"$PY" -m services.cli.main record --venue binance --duration 2 -o "$OUT/session.binance.dzrec" --config "$OUT/session.toml" &
"$PY" -m services.cli.main record --venue mexc --duration 2 -o "$OUT/session.mexc.dzrec" --config "$OUT/session.toml"
wait %2 2>/dev/null || true
"$PY" - <<'PYEOF'
import json, msgspec
from pathlib import Path
from services.cli.replay import replay
from shared.config import load_config
f = Path("tests/fixtures")
r = replay(load_config(f / "session.toml"), [f / "session.binance.dzrec", f / "session.mexc.dzrec"])
out = {"digest": r.digest, "opportunities": r.opportunities, "books": {v: c["books"] for v, c in r.venues.items()}}
(f / "session.expected.json").write_text(json.dumps(out, indent=2) + "\n")
print(out)
PYEOF
