"""The detector's carry signals follow the executor's carries: taken over after a restart, dropped when no carry
was opened behind them (risk refused the OPEN), never while an execution is in flight."""

from __future__ import annotations

import numpy as np
import pytest

from services.detector.carry_state import CarrySignals
from shared.config import default_config_path, load_config
from shared.registry import Registry


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry(load_config(default_config_path()))


def signals(reg: Registry) -> CarrySignals:
    n = reg.n_symbols
    return CarrySignals(reg, np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.zeros(n), np.zeros(n, np.int64))


def carry(symbol: str, spot: str = "binance", perp: str = "binance_perp", qty: str = "-0.05") -> dict[str, object]:
    return {"carry_id": 1, "symbol": symbol, "spot_venue": spot, "perp_venue": perp, "perp_qty": qty}


def test_a_restarted_detector_takes_the_executors_carries(reg: Registry) -> None:
    sig = signals(reg)
    seeded, dropped = sig.apply([carry("ETHUSDT"), carry("SOLUSDT", spot="")], [])
    assert (seeded, dropped) == (["ETHUSDT", "SOLUSDT"], [])
    eth, sol = reg.symbol_id["ETHUSDT"], reg.symbol_id["SOLUSDT"]
    assert sig.open_perp[eth] == reg.venue_id["binance_perp"] and sig.open_spot[eth] == reg.venue_id["binance"]
    assert sig.open_qty[eth] == 0.05 and sig.open_settle_ms[eth] == 0
    assert sig.open_spot[sol] == -2  # the short alone
    assert sig.apply([carry("ETHUSDT"), carry("SOLUSDT", spot="")], []) == ([], [])  # known: nothing to do


def test_a_signal_with_no_carry_behind_it_is_dropped_on_the_second_ask(reg: Registry) -> None:
    sig = signals(reg)
    btc = reg.symbol_id["BTCUSDT"]
    sig.open_perp[btc], sig.open_spot[btc] = reg.venue_id["mexc_perp"], reg.venue_id["mexc"]  # the kernel signalled
    assert sig.apply([], []) == ([], [])  # once: it may be on its way to the executor
    assert sig.apply([], []) == ([], ["BTCUSDT"])
    assert sig.open_perp[btc] == -1 and sig.open_spot[btc] == -1 and sig.n_dropped == 1


def test_a_signal_whose_execution_is_in_flight_is_kept(reg: Registry) -> None:
    sig = signals(reg)
    btc = reg.symbol_id["BTCUSDT"]
    sig.open_perp[btc] = reg.venue_id["mexc_perp"]
    for _ in range(3):
        assert sig.apply([], ["BTCUSDT"]) == ([], [])
    assert sig.open_perp[btc] == reg.venue_id["mexc_perp"]
    assert sig.apply([], []) == ([], [])  # the in-flight one just ended: a first miss only


def test_the_first_answer_lifts_the_detectors_gate_once(reg: Registry) -> None:
    sig = signals(reg)
    lifted: list[bool] = []
    sig.on_first_answer = lambda: lifted.append(True)
    assert not sig.synced
    sig.apply([], [])
    sig.apply([], [])
    assert sig.synced and lifted == [True]
