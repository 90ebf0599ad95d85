"""Paper trading on real market data: orders filled inside draizer on the engine's own local book."""
