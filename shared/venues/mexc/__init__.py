"""MEXC spot v3: constants, signing, market-data (protobuf) and order formats."""
