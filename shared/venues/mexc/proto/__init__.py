"""draizer's own protobuf schema for MEXC data frames and its generated module (scripts/gen_proto.sh)."""
