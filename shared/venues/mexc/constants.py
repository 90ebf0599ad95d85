"""MEXC spot v3 wire constants: paths, channels, status names and error codes (see PROTOCOLS.md)."""

from __future__ import annotations

API_KEY_HEADER = "X-MEXC-APIKEY"
ORDER_PATH = "/api/v3/order"
TIME_PATH = "/api/v3/time"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
OPEN_ORDERS_PATH = "/api/v3/openOrders"
ACCOUNT_PATH = "/api/v3/account"
MY_TRADES_PATH = "/api/v3/myTrades"

# MEXC documents 500 requests per 10 s per endpoint and no usage headers; draizer budgets that as 500
# orders per 10 s and 3000 weight a minute, weighing requests as MEXC's endpoint pages do.
LIMIT_WEIGHT_PER_MINUTE = 3000
LIMIT_ORDERS_PER_10S = 500
LIMIT_ORDERS_PER_DAY = 0  # none documented
WEIGHT_NEW_ORDER = 1
WEIGHT_QUERY_ORDER = 2
WEIGHT_CANCEL_ORDER = 1
WEIGHT_OPEN_ORDERS_SYMBOL = 3
WEIGHT_OPEN_ORDERS_ALL = 3
WEIGHT_CANCEL_ALL = 1
WEIGHT_ACCOUNT = 10
WEIGHT_MY_TRADES = 10
WEIGHT_MY_TRADES_BY_ORDER = 10
WEIGHT_EXCHANGE_INFO = 10
WEIGHT_TIME = 1
WEIGHT_ALL_ORDERS = 10  # GET /api/v3/allOrders with a symbol
WS_PATH = "/ws"

BOOK_TICKER_CHANNEL = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"  # + uppercase symbol
DEPTH_CHANNEL_PREFIX = "spot@public.aggre.depth.v3.api.pb@"  # + "100ms@" or "10ms@" + uppercase symbol
DEPTH_PATH = "/api/v3/depth"
MAX_DEPTH_LIMIT = 5000
# Futures (contract) API: JSON WebSocket and REST; perpetual symbols are written BASE_QUOTE.
CONTRACT_WS_PATH = "/edge"
CONTRACT_PING_FRAME = '{"method":"ping"}'
CONTRACT_PING_INTERVAL_S = 15.0  # the venue drops a link without a ping for a minute
CONTRACT_SUB_FUNDING = "sub.funding.rate"
CONTRACT_PUSH_FUNDING = "push.funding.rate"
FUNDING_RATE_PATH = "/api/v1/contract/funding_rate/"  # + BASE_QUOTE
# Contract REST orders (shared/venues/mexc/contract_orders.py): its API key header, and its documented limits
# as draizer's budget can hold them. The docs give every endpoint used "Rate limit: 20 times/2 seconds" (per
# endpoint) and contract/detail 1 per 5 s; the budget (DocumentedLimits) counts weight per minute and new
# orders per 10 s, which cannot express a 2 s window. So: new orders at most 20 per 10 s (then never more than
# 20 in any 2 s: the submit endpoint's limit, conservatively), and weight 600 a minute (20 / 2 s sustained,
# for all endpoints together), contract/detail weighing 50 (its 12 a minute of the 600). A burst of queries
# inside 2 s can still meet the venue's 510; its Retry-After (if any) then holds every request.
CONTRACT_API_KEY_HEADER = "ApiKey"
CONTRACT_LIMIT_WEIGHT_PER_MINUTE = 600
CONTRACT_LIMIT_ORDERS_PER_10S = 20
CONTRACT_LIMIT_ORDERS_PER_DAY = 0  # none documented
CONTRACT_WEIGHT_REQUEST = 1  # every private endpoint, ping, ticker
CONTRACT_WEIGHT_DETAIL = 50
MAX_SUBSCRIPTIONS = 30  # per connection, and per SUBSCRIPTION frame here
KEEPALIVE_INTERVAL_S = 20.0
PING_FRAME = '{"method":"PING"}'
PONG_MSG = "PONG"
BLOCKED_MARKER = "Blocked!"  # how MEXC answers a subscription to a retired JSON channel
NOT_SUBSCRIBED_MARKER = "Not Subscribed"  # a refused subscription still carries code 0
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5000

# Order types and statuses
TYPE_IOC = "IMMEDIATE_OR_CANCEL"
TYPE_FOK = "FILL_OR_KILL"
TYPE_MARKET = "MARKET"
TYPE_LIMIT = "LIMIT"
NEW = "NEW"
FILLED = "FILLED"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
CANCELED = "CANCELED"  # an IOC that filled nothing
PARTIALLY_CANCELED = "PARTIALLY_CANCELED"  # an IOC whose remainder was cancelled after a partial fill
REJECTED = "REJECTED"

# Error codes
ERR_SIGNATURE = 700002
ERR_API_KEY_FORMAT = 700001
ERR_TIMESTAMP = 700003
ERR_RECV_WINDOW = 700005
ERR_BAD_SYMBOL = 10007
ERR_INVALID_ACCESS_KEY = 10072
ERR_INSUFFICIENT = 10101
ERR_MIN_VOLUME = 30002
ERR_ORDER_TYPE = 30041
ERR_PARAM = 33333
ERR_NO_SUCH_ORDER = -2013
ERR_UNKNOWN_ORDER = -2011  # cancel of an order that is not open
ERR_INTERNAL = 500
ERR_TOO_MANY_REQUESTS = 429

STATUS_UNKNOWN_CODES = frozenset({ERR_INTERNAL})
NOT_FOUND_CODES = frozenset({ERR_NO_SUCH_ORDER, ERR_UNKNOWN_ORDER})

MSG_SIGNATURE = "Signature for this request is not valid."
MSG_TIMESTAMP = "Timestamp for this request is outside of the recvWindow."
MSG_BAD_SYMBOL = "bad symbol"
MSG_INSUFFICIENT = "Insufficient balance"
MSG_API_KEY_FORMAT = "API-key format invalid."
MSG_INVALID_ACCESS_KEY = "invalid access key"
MSG_RECV_WINDOW = "recvWindow must less than 60000"
MSG_ORDER_TYPE = "current order type can not place order"
MSG_NO_SUCH_ORDER = "Order does not exist."
# MEXC documents no code for a reused client order id; the simulator answers with its parameter error.
MSG_DUPLICATE = "Duplicate order sent."
