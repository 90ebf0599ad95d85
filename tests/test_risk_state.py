"""Risk state on disk: round trip, corrupt files refused by name, the UTC day roll, and atomic replacement
under kill -9 of a real child process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from services.risk.rules import BREAKER_FAILURE, SYMBOL_IN_FLIGHT, RiskBook
from services.risk.state import (
    BreakerState,
    Reservation,
    RiskState,
    StateError,
    StateStore,
    decode_state,
    encode_state,
    utc_day,
)
from shared.config import Risk
from tests.test_risk_rules import BIN, BTC, MEXC, NOW, REG, WALL, WALL_MS, cross, venue_state

REPO = Path(__file__).resolve().parents[1]
VENUES, SYMBOLS = REG.venue_names, REG.symbol_names


def full_state() -> RiskState:
    return RiskState(
        day=utc_day(WALL),
        daily_pnl_usd=-12.345678901234567,
        positions={"binance": {"BTC": Decimal("0.00000001"), "USDT": Decimal("-970.97000000")},
                   "mexc": {"BTC": Decimal("-0.01"), "USDT": Decimal("971.5142")}},
        breakers=BreakerState(loss_until_ms=WALL_MS + 60_000, failure_until_ms=0, orphan=True,
                              orphan_note="opportunity 9 orphaned", losses=[(WALL_MS - 5, -40.5)],
                              failures=[(WALL_MS - 9, "unwound"), (WALL_MS - 3, "rejected")]),
        kill=True,
        in_flight={5: Reservation(WALL_MS, ((BIN, BTC), (MEXC, BTC)),
                                  ((BIN, "USDT", 970.97), (MEXC, "BTC", 0.01)), ((BIN, 1), (MEXC, 1)))},
        session="run-1",
        session_pnl_usd=-2.0000000000000004,
        executor_session="run-1",
        executor_seq=41,
        ahead={43: WALL_MS - 2, 42: WALL_MS - 1},
    )


def test_a_state_written_and_reloaded_is_equal(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "risk.json")
    assert store.read() is None  # a first start: nothing to load
    state = full_state()
    assert store.write(encode_state(state, VENUES, SYMBOLS, WALL_MS), 1)
    data = store.read()
    assert data is not None
    loaded, warnings = decode_state(data, VENUES, SYMBOLS, str(store.path))
    assert loaded == state and warnings == []
    assert str(loaded.positions["binance"]["USDT"]) == "-970.97000000"  # exact text, trailing zeros kept
    assert not list(store.path.parent.glob(".*.tmp"))  # the temporary file was renamed away


def test_a_file_from_before_session_figures_reads_as_a_new_run(tmp_path: Path) -> None:
    """Files written before the run's PnL and the executor's numbering were kept: read, never refused; the next
    start begins this run's figures from zero and follows the executor from #1."""
    doc = msgspec.json.decode(encode_state(full_state(), VENUES, SYMBOLS, WALL_MS))
    for added in ("session", "session_pnl_usd", "executor_session", "executor_seq", "ahead"):
        del doc[added]
    state, _ = decode_state(msgspec.json.encode(doc), VENUES, SYMBOLS, "x")
    assert (state.session, state.session_pnl_usd, state.executor_seq, state.ahead) == ("", 0.0, 0, {})
    assert state.daily_pnl_usd == full_state().daily_pnl_usd
    book = RiskBook(Risk(), REG, state)
    assert not book.begin_session("run-2") and book.session_pnl_usd == 0.0 and book.state.session == "run-2"


def test_the_runs_pnl_continues_within_the_run_only() -> None:
    state, _ = decode_state(encode_state(full_state(), VENUES, SYMBOLS, WALL_MS), VENUES, SYMBOLS, "x")
    book = RiskBook(Risk(), REG, state)
    assert book.begin_session("run-1") and book.session_pnl_usd == -2.0000000000000004  # a restart within it
    assert not book.begin_session("run-2") and book.session_pnl_usd == 0.0  # the next run
    assert book.state.daily_pnl_usd == -12.345678901234567  # the day's figure spans runs


def test_an_older_generation_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "risk.json")
    newer = RiskState(day=1, daily_pnl_usd=-2.0)
    assert store.write(encode_state(newer, VENUES, SYMBOLS, 0), 2)
    assert not store.write(encode_state(RiskState(day=1, daily_pnl_usd=-1.0), VENUES, SYMBOLS, 0), 1)
    data = store.read()
    assert data is not None and decode_state(data, VENUES, SYMBOLS, "x")[0] == newer


def test_a_reloaded_book_keeps_kill_breakers_and_reservations() -> None:
    data = encode_state(full_state(), VENUES, SYMBOLS, WALL_MS)
    state, _ = decode_state(data, VENUES, SYMBOLS, "x")
    book = RiskBook(Risk(), REG, state)
    book.on_venue_state(venue_state(BIN), NOW)
    book.on_venue_state(venue_state(MEXC), NOW)
    assert book.check(cross(), NOW, WALL) == "kill_switch"
    book.state.kill = False
    book.state.breakers.loss_until_ms = 0
    assert book.check(cross(), NOW, WALL) == BREAKER_FAILURE  # the orphan latch survived
    book.state.breakers.orphan = False
    assert book.check(cross(6), NOW, WALL) == SYMBOL_IN_FLIGHT  # opportunity 5 still holds BTCUSDT


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "corrupt"),
        (b'{"version": 1, "saved_ms": 0, "venues": [', "corrupt"),  # torn write
        (b"\x00\x00\x00\x00", "corrupt"),
        (b'{"version": 1}', "corrupt"),  # fields missing
        (b"[1, 2, 3]", "corrupt"),
    ],
)
def test_a_corrupt_file_is_an_error_naming_the_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "risk.json"
    path.write_bytes(content)
    data = StateStore(path).read()
    assert data is not None
    with pytest.raises(StateError) as err:
        decode_state(data, VENUES, SYMBOLS, str(path))
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_a_position_that_is_not_a_number_is_refused() -> None:
    good = encode_state(full_state(), VENUES, SYMBOLS, WALL_MS)
    bad = good.replace(b'"0.00000001"', b'"one satoshi"')
    assert bad != good
    with pytest.raises(StateError, match="binance/BTC"):
        decode_state(bad, VENUES, SYMBOLS, "risk.json")
    with pytest.raises(StateError, match="version 7"):
        decode_state(good.replace(b'"version":1', b'"version":7'), VENUES, SYMBOLS, "risk.json")


def test_reservations_written_under_another_venue_layout_are_dropped_with_a_warning() -> None:
    data = encode_state(full_state(), VENUES, SYMBOLS, WALL_MS)
    swapped = (VENUES[1], VENUES[0], *VENUES[2:])
    state, warnings = decode_state(data, swapped, SYMBOLS, "x")
    assert state.in_flight == {} and len(warnings) == 1 and "reservations dropped" in warnings[0]
    assert state.positions == full_state().positions  # money state is kept by venue name


def test_the_utc_day_roll_resets_daily_pnl_and_keeps_positions() -> None:
    state = full_state()
    midnight = (utc_day(WALL) + 1) * 86_400 * 10**9
    assert not state.roll_day(midnight - 1)
    assert state.daily_pnl_usd != 0
    assert state.roll_day(midnight)
    assert state.daily_pnl_usd == 0.0 and state.day == utc_day(WALL) + 1
    assert state.positions == full_state().positions


# The payloads are encoded once, so the loop spends its time inside StateStore.write: a kill lands mid-write.
# (The same loop with a plain ``Path.write_bytes`` leaves a truncated file in most of the kills.)
CHILD = """
import sys
from decimal import Decimal
from pathlib import Path
from services.risk.state import RiskState, StateStore, encode_state

venues, symbols = ("binance", "mexc"), ("BTCUSDT",)
def payload(d):
    positions = {"binance": {f"A{k}": Decimal(d) / 7 for k in range(60000)}}
    return encode_state(RiskState(day=d, daily_pnl_usd=-d, positions=positions), venues, symbols, d)

payloads = [payload(1), payload(2)]
store = StateStore(Path(sys.argv[1]))
i = 0
while True:
    i += 1
    store.write(payloads[i % 2], i)
    sys.stdout.write(f"{i}\\n")
    sys.stdout.flush()
"""


def test_kill_9_while_writing_never_leaves_a_file_that_fails_to_load(tmp_path: Path) -> None:
    path = tmp_path / "risk.json"
    rng = random.Random(5)
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=REPO, stdout=subprocess.PIPE)
        assert child.stdout is not None
        for _ in range(rng.randint(1, 6)):  # each line: one more complete write
            assert child.stdout.readline(), "the writer died on its own"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        state, _ = decode_state(path.read_bytes(), ("binance", "mexc"), ("BTCUSDT",), str(path))
        assert state.day in (1, 2) and state.daily_pnl_usd == -state.day
        assert len(state.positions["binance"]) == 60000
