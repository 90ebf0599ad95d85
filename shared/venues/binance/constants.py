"""Binance spot wire constants: paths, headers, status names and error codes (see PROTOCOLS.md)."""

from __future__ import annotations

API_KEY_HEADER = "X-MBX-APIKEY"
ORDER_PATH = "/api/v3/order"
TIME_PATH = "/api/v3/time"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"

STREAM_SUFFIX = "@bookTicker"
BOOK_TICKER_SUFFIX = STREAM_SUFFIX
DEPTH_SUFFIX = "@depth"  # diff: <sym>@depth (1000 ms) or <sym>@depth@100ms; partial: <sym>@depth<N>[@100ms]
MARK_PRICE_SUFFIX = "@markPrice@1s"  # USD-M futures
COMBINED_PATH = "/stream"
FUTURES_ROUTED_PATH = "/market/stream"  # USD-M routed path that carries markPrice
RAW_PATH_PREFIX = "/ws"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_INCOMING_PER_S = 5  # control messages, pings and pongs a client may send per second
DEPTH_PATH = "/api/v3/depth"
PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
SERVER_SHUTDOWN_EVENT = "serverShutdown"
PARTIAL_DEPTH_LEVELS = (5, 10, 20)
MAX_DEPTH_LIMIT = 5000
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5000

# Order statuses
NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"  # an IOC/FOK remainder (or the whole order) that could not fill at once

# Error codes (errors.md)
ERR_UNKNOWN = -1000
ERR_TIMEOUT = -1007  # "send status unknown; execution status unknown"
ERR_ILLEGAL_CHARS = -1100
ERR_MANDATORY_PARAM = -1102
ERR_BAD_RECV_WINDOW = -1131
ERR_INVALID_TIF = -1115
ERR_INVALID_ORDER_TYPE = -1116
ERR_INVALID_SIDE = -1117
ERR_FILTER = -1013
ERR_TIMESTAMP = -1021
ERR_SIGNATURE = -1022
ERR_BAD_PRECISION = -1111
ERR_BAD_SYMBOL = -1121
ERR_NEW_ORDER_REJECTED = -2010
ERR_NO_SUCH_ORDER = -2013
ERR_API_KEY_FORMAT = -2014
ERR_API_KEY_REJECTED = -2015

# Codes whose answer does not tell whether the order exists: query it.
STATUS_UNKNOWN_CODES = frozenset({ERR_UNKNOWN, ERR_TIMEOUT})

MSG_SIGNATURE = "Signature for this request is not valid."
MSG_TIMESTAMP = "Timestamp for this request is outside of the recvWindow."
MSG_BAD_SYMBOL = "Invalid symbol."
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_API_KEY_FORMAT = "API-key format invalid."
MSG_API_KEY_REJECTED = "Invalid API-key, IP, or permissions for action."
MSG_RECV_WINDOW = "recvWindow must be less than 60000"
MSG_PRICE_FILTER = "Filter failure: PRICE_FILTER"
MSG_LOT_SIZE = "Filter failure: LOT_SIZE"
MSG_NOTIONAL = "Filter failure: NOTIONAL"

# WebSocket control errors
WS_ERR_INVALID_REQUEST = 2
WS_ERR_INVALID_JSON = 3
