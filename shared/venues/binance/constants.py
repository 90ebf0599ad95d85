"""Binance spot wire constants: paths, headers, status names and error codes (see PROTOCOLS.md)."""

from __future__ import annotations

API_KEY_HEADER = "X-MBX-APIKEY"
ORDER_PATH = "/api/v3/order"
TIME_PATH = "/api/v3/time"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
OPEN_ORDERS_PATH = "/api/v3/openOrders"
ACCOUNT_PATH = "/api/v3/account"
MY_TRADES_PATH = "/api/v3/myTrades"
WS_API_PATH = "/ws-api/v3"
WS_API_SUBSCRIBE = "userDataStream.subscribe.signature"
EXECUTION_REPORT_EVENT = "executionReport"
STREAM_TERMINATED_EVENT = "eventStreamTerminated"

# Usage headers (every response: weight; order endpoints: order counts) and the documented limits.
WEIGHT_HEADER = "x-mbx-used-weight-1m"
ORDER_COUNT_10S_HEADER = "x-mbx-order-count-10s"
ORDER_COUNT_1D_HEADER = "x-mbx-order-count-1d"
LIMIT_WEIGHT_PER_MINUTE = 6000
LIMIT_ORDERS_PER_10S = 50
LIMIT_ORDERS_PER_DAY = 160_000
# USD-M futures (derivatives general-info / common-definition): REQUEST_WEIGHT 2400 per minute, ORDERS 1200 per
# minute and 300 per 10 s. Here rather than in futures_orders.py so the light kind declaration can read them.
FUTURES_LIMIT_WEIGHT_PER_MINUTE = 2400
FUTURES_LIMIT_ORDERS_PER_MINUTE = 1200
FUTURES_LIMIT_ORDERS_PER_10S = 300
# Request weights from rest-api.md (openOrders: 6 for one symbol, 80 for all; myTrades: 5 with orderId).
WEIGHT_NEW_ORDER = 1
WEIGHT_QUERY_ORDER = 4
WEIGHT_CANCEL_ORDER = 1
WEIGHT_OPEN_ORDERS_SYMBOL = 6
WEIGHT_OPEN_ORDERS_ALL = 80
WEIGHT_CANCEL_ALL = 1
WEIGHT_ACCOUNT = 20
WEIGHT_MY_TRADES = 20
WEIGHT_MY_TRADES_BY_ORDER = 5
WEIGHT_EXCHANGE_INFO = 20
WEIGHT_TIME = 1
WEIGHT_ALL_ORDERS = 20  # GET /api/v3/allOrders with a symbol

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
EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"  # expired by self-trade prevention
PENDING_NEW = "PENDING_NEW"  # an order-list leg not yet working
PENDING_CANCEL = "PENDING_CANCEL"  # documented as unused

# Error codes (errors.md)
ERR_UNKNOWN = -1000
ERR_TOO_MANY_REQUESTS = -1003
ERR_TOO_MANY_ORDERS = -1015
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
ERR_CANCEL_REJECTED = -2011  # "Unknown order sent.": nothing open with that id
ERR_NO_SUCH_ORDER = -2013
ERR_API_KEY_FORMAT = -2014
ERR_API_KEY_REJECTED = -2015

# Codes whose answer does not tell whether the order exists: query it.
STATUS_UNKNOWN_CODES = frozenset({ERR_UNKNOWN, ERR_TIMEOUT})
# Codes saying the order named in a query or cancel does not exist (or is no longer open).
NOT_FOUND_CODES = frozenset({ERR_NO_SUCH_ORDER, ERR_CANCEL_REJECTED})

MSG_SIGNATURE = "Signature for this request is not valid."
MSG_TIMESTAMP = "Timestamp for this request is outside of the recvWindow."
MSG_BAD_SYMBOL = "Invalid symbol."
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_TIMEOUT = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
MSG_API_KEY_FORMAT = "API-key format invalid."
MSG_API_KEY_REJECTED = "Invalid API-key, IP, or permissions for action."
MSG_RECV_WINDOW = "recvWindow must be less than 60000"
MSG_PRICE_FILTER = "Filter failure: PRICE_FILTER"
MSG_LOT_SIZE = "Filter failure: LOT_SIZE"
MSG_NOTIONAL = "Filter failure: NOTIONAL"

# WebSocket control errors
WS_ERR_INVALID_REQUEST = 2
WS_ERR_INVALID_JSON = 3
