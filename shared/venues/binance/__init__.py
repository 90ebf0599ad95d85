"""Binance spot: constants, signing, market-data and order formats."""
