"""Pre-encoded frames: every quote of the tape as the complete server→client WebSocket frame the venue sends.

Encoded exactly as on the wire (PROTOCOLS.md), and as the simulator writes them:

- Binance: combined-stream text ``{"stream":"btcusdt@bookTicker","data":{"u":..,"s":"BTCUSDT","b":"..",
  "B":"..","a":"..","A":".."}}``, prices and quantities plain decimal text on the symbol's tick and step;
- MEXC: binary protobuf ``PushDataV3ApiWrapper`` (channel ``spot@public.aggre.bookTicker.v3.api.pb@100ms@SYM``,
  symbol, sendTime, body ``publicAggreBookTicker`` with the version), built with draizer's generated module,
  one fresh message object per frame (a reused upb message leaks memory).

Each frame is already framed (FIN, opcode, server frames unmasked, 7/16/64-bit length), and a venue's frames
sit back to back in one buffer in send order, so sending N quotes to a connection that subscribed every
symbol is one slice of that buffer: no encoding, no per-frame work, during the run.

Update ids must only grow (a feed drops an id it has seen as a duplicate), also when the tape starts over.
An id is 14 digits, ``1 LLLLLL RRRRRRR``: loop number, then the quote's round + 1. Its length never changes,
so neither does any frame's, and starting a new loop rewrites the six loop digits of every frame in place
with one vectorized numpy assignment (milliseconds for the whole tape) instead of re-encoding anything.
MEXC's ``version`` is a string field of the same 14 digits, so the same in-place rewrite holds there.
``sendTime`` is the wall clock when the tape was built (the feed does not read it).

Funding frames (Binance USD-M markPrice, MEXC contract ``push.funding.rate``) go out once a second per symbol;
they are encoded when sent (a few dozen a second), with the event time of the moment.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from services.loadgen.prices import SpotVenueInfo, TapePrices
from services.sim.units import SymbolSpec, units_text
from shared.venues.binance.constants import BOOK_TICKER_SUFFIX
from shared.venues.declaration import load, need
from shared.venues.kinds import kind_of
from shared.venues.mexc.constants import BOOK_TICKER_CHANNEL, CONTRACT_PUSH_FUNDING
from shared.venues.mexc.proto.push_data_pb2 import PublicAggreBookTickerV3Api, PushDataV3ApiWrapper

OP_TEXT = 0x1
OP_BINARY = 0x2
FIN = 0x80

ID_BASE = 10**13  # 14 digits: "1", 6 loop digits, 7 round digits
LOOP_STRIDE = 10**7
LOOP_DIGITS = 6
MAX_LOOPS = 10**LOOP_DIGITS
MAX_ROUNDS = LOOP_STRIDE - 1


def ws_frame(payload: bytes, opcode: int) -> bytes:
    """One complete, unmasked server frame with FIN set (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes((FIN | opcode, n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", FIN | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", FIN | opcode, 127, n)
    return head + payload


def update_id(loop: int, round_: int) -> int:
    """The id (Binance ``u``, MEXC ``version``) of a slot's quote in ``round_`` on the tape's ``loop``-th pass."""
    return ID_BASE + loop * LOOP_STRIDE + round_ + 1


def split_id(uid: int) -> tuple[int, int]:
    """(loop, round) of an id made by ``update_id``."""
    rest = uid - ID_BASE
    return rest // LOOP_STRIDE, rest % LOOP_STRIDE - 1


def binance_stream(spec: SymbolSpec) -> str:
    return spec.name.lower() + BOOK_TICKER_SUFFIX


def mexc_channel(spec: SymbolSpec) -> str:
    return BOOK_TICKER_CHANNEL + spec.name


def binance_ticker_payload(spec: SymbolSpec, uid: int, bid: str, bid_qty: str, ask: str, ask_qty: str) -> bytes:
    return (
        f'{{"stream":"{binance_stream(spec)}","data":{{"u":{uid},"s":"{spec.name}","b":"{bid}","B":"{bid_qty}",'
        f'"a":"{ask}","A":"{ask_qty}"}}}}'
    ).encode()


def mexc_ticker_payload(spec: SymbolSpec, uid: int, bid: str, bid_qty: str, ask: str, ask_qty: str,
                        send_ms: int) -> bytes:
    ticker = PublicAggreBookTickerV3Api(
        bidPrice=bid, bidQuantity=bid_qty, askPrice=ask, askQuantity=ask_qty, version=str(uid)
    )
    wrapper = PushDataV3ApiWrapper(  # fresh per frame: never reuse a upb message
        channel=mexc_channel(spec), symbol=spec.name, sendTime=send_ms, publicAggreBookTicker=ticker
    )
    return wrapper.SerializeToString()


# A venue kind's bookTicker as the whole frame (``Simulated.load_ticker`` names one of these):
# (spec, update id, bid, bid qty, ask, ask qty, sendTime ms) -> the frame
TickerFrame = Callable[[SymbolSpec, int, str, str, str, str, int], bytes]


def binance_ticker_frame(spec: SymbolSpec, uid: int, bid: str, bid_qty: str, ask: str, ask_qty: str,
                         send_ms: int) -> bytes:
    return ws_frame(binance_ticker_payload(spec, uid, bid, bid_qty, ask, ask_qty), OP_TEXT)


def mexc_ticker_frame(spec: SymbolSpec, uid: int, bid: str, bid_qty: str, ask: str, ask_qty: str,
                      send_ms: int) -> bytes:
    return ws_frame(mexc_ticker_payload(spec, uid, bid, bid_qty, ask, ask_qty, send_ms=send_ms), OP_BINARY)


def ticker_frame_of(kind_name: str) -> TickerFrame:
    kind = kind_of(kind_name)
    frame: TickerFrame = load(need(kind, kind.sim.load_ticker, "load source bookTicker frame"))
    return frame


@dataclass
class VenueTape:
    """One spot venue's frames back to back, in send order, and where each one starts."""

    info: SpotVenueInfo
    buffer: bytearray
    offsets: list[int]  # frame k is buffer[offsets[k]:offsets[k + 1]]
    symbols: list[int]  # symbol index of frame k
    loop_at: np.ndarray  # int64: where frame k's loop digits start in the buffer
    loop: int = 0
    _index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = self.loop_at[:, None] + np.arange(LOOP_DIGITS, dtype=np.int64)[None, :]

    def __len__(self) -> int:
        return len(self.symbols)

    def restamp(self, loop: int) -> None:
        """Rewrite every frame's ids for pass ``loop`` of the tape (in place: lengths do not change)."""
        if not 0 <= loop < MAX_LOOPS:
            raise OverflowError(f"the tape has looped {loop} times: ids would stop growing")
        digits = np.frombuffer(f"{loop:0{LOOP_DIGITS}d}".encode(), dtype=np.uint8)
        view = np.frombuffer(self.buffer, dtype=np.uint8)
        view[self._index] = digits
        del view  # release the export, so the buffer stays an ordinary bytearray
        self.loop = loop

    def span(self, a: int, b: int) -> bytes:
        """Frames ``a`` to ``b`` (exclusive) as one bytes object (a copy: the buffer is rewritten next loop)."""
        return bytes(memoryview(self.buffer)[self.offsets[a] : self.offsets[b]])

    def select(self, a: int, b: int, wanted: Sequence[bool]) -> tuple[bytes, int]:
        """Frames ``a`` to ``b`` of the symbols ``wanted[symbol]`` marks, and how many there are."""
        mv, off, sym = memoryview(self.buffer), self.offsets, self.symbols
        parts = [mv[off[k] : off[k + 1]] for k in range(a, b) if wanted[sym[k]]]
        return b"".join(parts), len(parts)

    def count(self, a: int, b: int, wanted: Sequence[bool]) -> int:
        """How many of frames ``a`` to ``b`` are of the symbols ``wanted`` marks."""
        sym = self.symbols
        return sum(1 for k in range(a, b) if wanted[sym[k]])

    def payload(self, k: int) -> bytes:
        """Frame ``k`` without its WebSocket header (tests)."""
        frame = bytes(memoryview(self.buffer)[self.offsets[k] : self.offsets[k + 1]])
        n = frame[1] & 0x7F
        return frame[2 + (2 if n == 126 else 8 if n == 127 else 0) :]


@dataclass
class Tape:
    """The whole pre-encoded tape: the prices and, per spot venue, its frames."""

    prices: TapePrices
    venues: list[VenueTape]
    in_round: list[list[int]]  # per venue: how many of its slots come before position k of a round
    per_round: list[int]  # per venue: its slots per round

    @property
    def n_quotes(self) -> int:
        return len(self.prices)

    def local_index(self, venue: int, g: int) -> int:
        """How many of ``venue``'s frames come before global quote ``g`` (0 <= g <= n_quotes)."""
        r, k = divmod(g, self.prices.n_slots)
        return r * self.per_round[venue] + self.in_round[venue][k]

    def restamp(self, loop: int) -> None:
        for v in self.venues:
            v.restamp(loop)


def build_tape(prices: TapePrices, send_ms: int | None = None) -> Tape:
    """Encode every quote of ``prices`` for its venue; ``send_ms`` stamps MEXC's sendTime (default: now)."""
    if prices.rounds > MAX_ROUNDS:
        raise ValueError(f"{prices.rounds} rounds do not fit the {MAX_ROUNDS} an update id can number")
    send = time.time_ns() // 1_000_000 if send_ms is None else send_ms
    specs = prices.specs
    n_slots = prices.n_slots
    frames: list[list[bytes]] = [[] for _ in prices.venues]
    symbols: list[list[int]] = [[] for _ in prices.venues]
    loop_at: list[list[int]] = [[] for _ in prices.venues]
    sizes = [0] * len(prices.venues)
    kinds = [v.kind for v in prices.venues]
    ticker_frames = [ticker_frame_of(kind) for kind in kinds]
    venue, symbol = prices.venue.tolist(), prices.symbol.tolist()
    bid, bid_qty = prices.bid.tolist(), prices.bid_qty.tolist()
    ask, ask_qty = prices.ask.tolist(), prices.ask_qty.tolist()
    for g in range(len(prices)):
        v, s = venue[g], symbol[g]
        spec = specs[s]
        pd, qd = spec.price_decimals, spec.qty_decimals
        uid = update_id(0, g // n_slots)
        texts = (units_text(bid[g], pd), units_text(bid_qty[g], qd), units_text(ask[g], pd), units_text(ask_qty[g], qd))
        frame = ticker_frames[v](spec, uid, *texts, send)
        id_bytes = str(uid).encode()
        at = frame.find(id_bytes)
        if at < 0 or frame.find(id_bytes, at + 1) >= 0:  # pragma: no cover - the id is 14 digits, nothing else is
            raise AssertionError(f"update id {uid} not found exactly once in a {kinds[v]} frame")
        loop_at[v].append(sizes[v] + at + 1)
        sizes[v] += len(frame)
        frames[v].append(frame)
        symbols[v].append(s)
    tapes: list[VenueTape] = []
    for info, fs, syms, at_list in zip(prices.venues, frames, symbols, loop_at, strict=True):
        offsets = [0]
        for f in fs:
            offsets.append(offsets[-1] + len(f))
        tapes.append(VenueTape(info, bytearray(b"".join(fs)), offsets, syms, np.array(at_list, dtype=np.int64)))
    in_round = [[0] * (n_slots + 1) for _ in prices.venues]
    for v in range(len(prices.venues)):
        for k, (slot_v, _) in enumerate(prices.slots):
            in_round[v][k + 1] = in_round[v][k] + (slot_v == v)
    return Tape(prices, tapes, in_round, [row[-1] for row in in_round])


# ----- funding (encoded when sent: once a second per symbol)
def json_number(value: float, decimals: int = 6) -> str:
    """A plain decimal JSON number (``0.000034``, never ``3.4e-05``), as MEXC writes its rates."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def binance_mark_frame(stream: str, symbol: str, rate: float, mark: float, index: float, next_ms: int,
                       event_ms: int) -> bytes:
    """A combined-stream ``markPriceUpdate`` (USD-M futures), framed."""
    payload = (
        f'{{"stream":"{stream}","data":{{"e":"markPriceUpdate","E":{event_ms},"s":"{symbol}","p":"{mark:.8f}",'
        f'"i":"{index:.8f}","P":"{index:.8f}","r":"{rate:.8f}","T":{next_ms}}}}}'
    )
    return ws_frame(payload.encode(), OP_TEXT)


def mexc_funding_frame(contract_symbol: str, rate: float, next_ms: int, ts_ms: int) -> bytes:
    """A MEXC contract ``push.funding.rate``, framed."""
    payload = (
        f'{{"channel":"{CONTRACT_PUSH_FUNDING}","data":{{"symbol":"{contract_symbol}","rate":{json_number(rate)},'
        f'"nextSettleTime":{next_ms}}},"ts":{ts_ms}}}'
    )
    return ws_frame(payload.encode(), OP_TEXT)
