"""Per-order cost of turning (price, quantity, client id) into the signed HTTP/1.1 bytes of a new order.

Two paths, the same orders, interleaved in one run (so both see the same machine load):

- today: ``shared.money.price_text`` / ``step_multiple_text`` (Decimal), ``order_format(kind).build_new_order``
  (params list, ``query_string``, HMAC object copy) and ``HttpPool.encode``;
- template: ``OrderTemplate`` prepared at start; per order ``Increment.nearest`` for price and quantity
  (float → whole ticks/steps), then ``OrderTemplate.request`` (units → text, HMAC, one join);
- send-only: ``OrderTemplate.request_text`` from texts made beforehand (in the executor ``new_order``
  writes them and the journal records them before the send), i.e. what is left at send time.

Both include reading the clock for the timestamp. Each order is timed alone (``perf_counter_ns`` around it,
the timer's own median cost subtracted); the bytes are checked equal before timing. Binance and MEXC LIMIT
IOC orders alternate. Also timed: the three ways to take the HMAC-SHA256 of one order's query string.

    .venv/bin/python benchmarks/order_template.py [--orders 100000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.http.client import HttpPool  # noqa: E402
from shared.money import price_text, step_multiple_text  # noqa: E402
from shared.venues import order_format  # noqa: E402
from shared.venues.common import ORDER_LIMIT_IOC  # noqa: E402
from shared.venues.order_template import OrderTemplate, PreparedHmac  # noqa: E402

TICK, STEP = Decimal("0.01"), Decimal("0.00001")
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BASE_URL = "https://api.binance.com"
RECV_WINDOW_MS = 5000
CLOCK_OFFSET_MS = -37  # venue clock minus ours, as VenueClient.sync_clock measures it

Order = tuple[float, float, str, str, str]  # price, qty, client id, price text, qty text
Sample = Callable[[Order], bytes]


def orders(n: int, seed: int = 1) -> list[Order]:
    """Prices near a 97k mid on the tick, quantities the detector floored to the step (float noise kept)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        price = round(97_000 + rng.randint(-5_000, 5_000) * 0.01, 2)
        qty = rng.randint(1, 20_000) * 0.00001
        cid = f"dz{rng.getrandbits(44):x}{'bs'[i & 1]}{i % 3}"
        out.append((price, qty, cid, price_text(price, TICK), step_multiple_text(qty, STEP)))
    return out


def today(kind: str) -> Sample:
    fmt = order_format(kind)
    pool = HttpPool(BASE_URL)

    def one(o: Order) -> bytes:
        price, qty, cid, _, _ = o
        ts = time.time_ns() // 1_000_000 + CLOCK_OFFSET_MS
        req = fmt.build_new_order(
            symbol="BTCUSDT", side="BUY", price=price_text(price, TICK), qty=step_multiple_text(qty, STEP),
            client_order_id=cid, api_key=KEY, api_secret=SECRET, timestamp_ms=ts, recv_window_ms=RECV_WINDOW_MS,
            order_type=ORDER_LIMIT_IOC,
        )
        return pool.encode(req.method, req.path, req.headers, req.body)

    return one


def template(kind: str) -> Sample:
    t = OrderTemplate(kind, "BTCUSDT", "BUY", ORDER_LIMIT_IOC, tick=TICK, step=STEP, api_key=KEY, api_secret=SECRET,
                      recv_window_ms=RECV_WINDOW_MS, base_url=BASE_URL)
    nearest_price, nearest_qty, request = t.price.nearest, t.qty.nearest, t.request

    def one(o: Order) -> bytes:
        price, qty, cid, _, _ = o
        return request(nearest_price(price), nearest_qty(qty), cid, time.time_ns() // 1_000_000 + CLOCK_OFFSET_MS)

    return one


def template_texts_ready(kind: str) -> Sample:
    """The executor's split: ``new_order`` writes the texts (journal first), ``send`` builds the bytes."""
    t = OrderTemplate(kind, "BTCUSDT", "BUY", ORDER_LIMIT_IOC, tick=TICK, step=STEP, api_key=KEY, api_secret=SECRET,
                      recv_window_ms=RECV_WINDOW_MS, base_url=BASE_URL)
    request_text = t.request_text

    def one(o: Order) -> bytes:
        _, _, cid, price, qty = o
        return request_text(price, qty, cid, time.time_ns() // 1_000_000 + CLOCK_OFFSET_MS)

    return one


def timer_cost() -> int:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        t0 = pc()
        samples.append(pc() - t0)
    return int(statistics.median(samples))


def pct(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e3


def summary(samples: list[int], overhead: int) -> dict[str, float]:
    s = sorted(max(0, x - overhead) for x in samples)
    mean = statistics.fmean(s)
    return {"p50_us": pct(s, 0.5), "p99_us": pct(s, 0.99), "p999_us": pct(s, 0.999), "mean_us": mean / 1e3,
            "orders_per_s": 1e9 / mean if mean else 0.0}


def run_paths(n: int) -> tuple[dict[str, list[int]], int]:
    work = orders(n)
    paths = {
        "today": [today("binance"), today("mexc")],
        "template": [template("binance"), template("mexc")],
        "send-only": [template_texts_ready("binance"), template_texts_ready("mexc")],
    }
    # Same bytes, or the comparison means nothing (timestamps can cross a millisecond: retry once).
    for o in work[:200]:
        for a, b, c in zip(paths["today"], paths["template"], paths["send-only"], strict=True):
            ra, rb, rc = a(o), b(o), c(o)
            assert ra == rb == rc or a(o) == b(o) == c(o), (ra, rb, rc)
    samples: dict[str, list[int]] = {name: [] for name in paths}
    pc = time.perf_counter_ns
    chunk = 1_000
    for start in range(0, n, chunk):  # interleave the paths chunk by chunk
        block = work[start:start + chunk]
        for name, fns in paths.items():
            out = samples[name]
            for i, o in enumerate(block):
                fn = fns[i & 1]
                t0 = pc()
                fn(o)
                out.append(pc() - t0)
    return samples, timer_cost()


def run_hmac(n: int) -> dict[str, float]:
    """One order's query string signed three ways; median ns per signature (loops of 1000)."""
    secret = SECRET.encode()
    qs = (b"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.00150&price=97000.01"
          b"&newClientOrderId=dz1a2b3c4d5b0&newOrderRespType=FULL&recvWindow=5000&timestamp=1499827319559")
    keyed = hmac.new(secret, digestmod=hashlib.sha256)
    prepared = PreparedHmac(secret)
    digest = hmac.digest

    def hmac_copy() -> str:  # today's shared.venues.common.hmac_sha256_hex
        mac = keyed.copy()
        mac.update(qs)
        return mac.hexdigest()

    def one_shot() -> str:
        return digest(secret, qs, "sha256").hex()

    def prepared_copies() -> str:
        return prepared.hexdigest(qs)

    ways = {"hmac.HMAC.copy": hmac_copy, "hmac.digest one-shot": one_shot, "PreparedHmac": prepared_copies}
    assert len({f() for f in ways.values()}) == 1
    out: dict[str, list[float]] = {k: [] for k in ways}
    pc = time.perf_counter_ns
    for _ in range(max(1, n // 1000)):
        for name, f in ways.items():
            t0 = pc()
            for _ in range(1000):
                f()
            out[name].append((pc() - t0) / 1000)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=100_000, help="orders per path")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    gc.collect()
    gc.freeze()  # as the services do after start-up
    samples, overhead = run_paths(args.orders)
    result = {name: summary(s, overhead) for name, s in samples.items()}
    macs = run_hmac(args.orders)
    ratio = {k: result["today"][k] / result["template"][k] for k in ("p50_us", "p99_us", "mean_us")}
    if args.json:
        print(json.dumps({"paths": result, "ratio_today_over_template": ratio, "hmac_ns": macs,
                          "timer_overhead_ns": overhead, "orders": args.orders, "python": sys.version.split()[0]}))
        return
    print(f"{args.orders} LIMIT IOC orders per path (Binance and MEXC alternating), Python {sys.version.split()[0]}; "
          f"timer overhead {overhead} ns subtracted\n")
    print(f"{'path':<10} {'P50 µs':>8} {'P99 µs':>8} {'P99.9 µs':>9} {'mean µs':>8} {'orders/s':>10}")
    for name, r in result.items():
        print(f"{name:<10} {r['p50_us']:>8.2f} {r['p99_us']:>8.2f} {r['p999_us']:>9.2f} {r['mean_us']:>8.2f} "
              f"{r['orders_per_s']:>10.0f}")
    print(f"\ntoday / template: P50 {ratio['p50_us']:.1f}x, P99 {ratio['p99_us']:.1f}x, "
          f"throughput {ratio['mean_us']:.1f}x\n")
    print("HMAC-SHA256 of one order's query string (median ns):")
    for name, ns in macs.items():
        print(f"  {name:<22} {ns:>7.0f}")


if __name__ == "__main__":
    main()
