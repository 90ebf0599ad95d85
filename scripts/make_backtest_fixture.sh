#!/usr/bin/env bash
# Re-record tests/fixtures/backtest/ from the simulator: both spot venues and one perpetual (binance_perp)
# recorded together, in one process on one clock, for ~3 s, with the config `draizer backtest` runs them with
# (paper mode, fills = "model": no keys). Only needed when the wire formats or the recording format change on
# purpose; the backtest tests' expected numbers follow from these files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT=tests/fixtures/backtest
mkdir -p "$OUT"
rm -f "$OUT"/*.dzrec
"$PY" - <<'PYEOF'
import msgspec
from pathlib import Path
from shared.config import default_config_path, parse_config
from shared.venues.kinds import kind_of

KEEP = ("binance", "mexc", "binance_perp")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
data = msgspec.toml.decode(default_config_path().read_bytes())
data["instance"] = "backtest"
data["mode"] = "paper"
data["paper"] = {"fills": "model"}  # filled inside draizer against the recorded books: no keys, no venue
data["symbols"] = [s for s in data["symbols"] if s["name"] in SYMBOLS]
data["venues"] = [v for v in data["venues"] if v["name"] in KEEP]
# Modest quote rate and 10 book levels (small files), dislocations often enough that cross_exchange finds
# several in 3 s; funding pushed twice a second so the perpetual has a few points.
data["sim"].update(quotes_per_second=300.0, dislocation_probability=0.03, dislocation_quotes=30,
                   funding_push_interval_ms=500, depth_levels=10)
data["sim"]["venues"] = [sv for sv in data["sim"]["venues"] if sv["venue"] in KEEP]
ports = {sv["venue"]: (28801 + 10 * i, 28802 + 10 * i) for i, sv in enumerate(data["sim"]["venues"])}
for sv in data["sim"]["venues"]:
    sv["ws_port"], sv["rest_port"] = ports[sv["venue"]]
for v in data["venues"]:
    ws, rest = ports[v["name"]]
    v["ws_url"] = f"ws://127.0.0.1:{ws}{kind_of(v['kind']).ws_path}"
    v["rest_url"] = f"http://127.0.0.1:{rest}"
    for key in ("api_key_env", "api_secret_env", "ws_api_url", "user_ws_url"):  # paper model: no keys, no user data
        v.pop(key, None)
    if v.get("symbols"):
        v["symbols"] = [s for s in v["symbols"] if s in SYMBOLS]
raw = msgspec.toml.encode(data)
parse_config(raw)  # refuse to write a config draizer would not load
Path("tests/fixtures/backtest/backtest.toml").write_bytes(raw)
PYEOF
"$PY" -m services.sim --config "$OUT/backtest.toml" >/dev/null 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
"$PY" - <<'PYEOF'  # wait until every simulated port accepts connections (recording starts its clock at once)
import socket, sys, time
ports = [28801, 28802, 28811, 28812, 28821, 28822]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        for port in ports:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("the simulator did not open its ports within 60 s")
PYEOF
"$PY" -m services.cli.main record --venue binance,mexc,binance_perp --duration 3 -o "$OUT" \
  --config "$OUT/backtest.toml"
"$PY" - <<'PYEOF'
from pathlib import Path
from services.cli.replay import replay
from services.feed.recording import Recording
from shared.config import load_config
f = Path("tests/fixtures/backtest")
files = sorted(f.glob("*.dzrec"))
for p in files:
    r = Recording(p)
    n = list(r)
    print(p.name, p.stat().st_size, "bytes", len(n), "records", sum(1 for x in n if x.event_ms), "with event time",
          len(r.header["rules"]), "rules")
r = replay(load_config(f / "backtest.toml"), files)
print({"opportunities": r.opportunities, "digest": r.digest, "books": {v: c["books"] for v, c in r.venues.items()}})
PYEOF
