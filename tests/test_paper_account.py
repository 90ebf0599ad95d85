"""Paper accounts: starting balances valued at the first prices, fixed once per run, and taken back by a restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec

from services.executor.paper.market import PaperMarket
from shared.config import default_config_path, parse_config
from shared.messages import MarketBatch, Quote
from shared.registry import Registry

D = Decimal


def market(tmp_path: Path, session: str, **paper: object) -> PaperMarket:
    data = msgspec.toml.decode(default_config_path().read_bytes())
    data["paper"] = {"fills": "model", "asset_balance_usd": 1000.0, **paper}
    cfg = parse_config(msgspec.toml.encode(data))
    return PaperMarket(cfg, Registry(cfg), tmp_path / "paper", session)


def quote(m: PaperMarket, symbol: str, bid: float, ask: float) -> None:
    reg = m.registry
    m.on_batch(MarketBatch(0, [Quote(reg.venue_id["binance"], reg.symbol_id[symbol], bid, 1.0, ask, 1.0, 1, 1)]))


def test_starting_balances_are_worth_the_configured_usd_at_the_first_prices_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        first = market(tmp_path, "run-1", balances={"USDT": "5000"})
        venue = first.registry.venue_id["binance"]
        opening = asyncio.ensure_future(first.open_account(venue, {}, wait_s=5.0))
        await asyncio.sleep(0.1)
        assert not opening.done()  # no price yet: the account waits for the feeds
        for name, mid in (("BTCUSDT", 100_000.0), ("ETHUSDT", 2_000.0)):
            quote(first, name, mid - 1, mid + 1)
        for s in first.cfg.symbols:  # every other asset priced too
            if s.quote == "USDT" and s.name not in ("BTCUSDT", "ETHUSDT"):
                quote(first, s.name, 0.99, 1.01)
        acct = await asyncio.wait_for(opening, 5.0)
        assert acct.balances["USDT"] == D("5000")  # paper.balances wins
        assert acct.balances["BTC"] == D("0.01") and acct.balances["ETH"] == D("0.5")  # 1000 USD at the mids

        # A restart of the executor in the same run: the same start, plus what the run traded there.
        again = market(tmp_path, "run-1")
        acct2 = await again.open_account(venue, {"BTC": D("-0.004"), "USDT": D("399.6")}, wait_s=0.0)
        assert acct2.start == acct.start
        assert acct2.balances["BTC"] == D("0.006") and acct2.balances["USDT"] == D("5399.6")

        # Another run starts from the config again (nothing priced yet: zero, with a warning, after the wait).
        other = market(tmp_path, "run-2")
        acct3 = await other.open_account(venue, {}, wait_s=0.0)
        assert acct3.balances["BTC"] == 0 and acct3.balances["USDT"] == D("1000")

    asyncio.run(scenario())
