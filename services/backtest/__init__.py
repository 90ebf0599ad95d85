"""``draizer backtest``: the live pipeline on a recording's clock, against simulated venues; its report and sweeps."""
