"""When the simulated perp venues settle funding: at every wall-clock multiple of ``sim.funding_period_s``.

Those are the boundaries the venues already publish as the next funding time (Binance ``T`` /
``nextFundingTime``, MEXC ``nextSettleTime``), so a client sees the settlement happen when the stream said it
would. The venue's period is 8 h; a demo config sets ``funding_period_s = 60`` and a short run pays funding
every minute. A loop that wakes late settles each boundary it missed, once each, in order.
"""

from __future__ import annotations

from services.sim.perp import next_funding_ms


class FundingClock:
    def __init__(self, period_s: int, now_ms: int) -> None:
        self.period_ms = period_s * 1000
        self.next_ms = next_funding_ms(now_ms, period_s)  # the first boundary after start
        self.settled = 0  # boundaries settled so far

    def due(self, now_ms: int) -> list[int]:
        """The boundaries passed since the last call, oldest first (each returned once)."""
        out = []
        while now_ms >= self.next_ms:
            out.append(self.next_ms)
            self.next_ms += self.period_ms
        self.settled += len(out)
        return out
