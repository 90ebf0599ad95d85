-- 001: draizer's history. One table per record kind (services/bridge/records.py); each primary key is the
-- record's idempotency key, so a retried batch, a spool backfill or a second journal import inserts nothing
-- twice (the writer uses INSERT ... ON CONFLICT DO NOTHING).
--
-- No foreign keys between the tables, on purpose: records arrive in whatever order batches, backfills and
-- imports deliver them (a fill may land before its order), and each row stands on its own key.
-- Times are timestamptz (UTC, microseconds); short durations keep their nanoseconds as bigint *_ns.
-- recorded_at is when the row reached the database: for backfilled rows it shows how late they came.

CREATE TABLE arbitrage_opportunities (
    id                  bigint PRIMARY KEY,          -- the detector's opportunity id (run-unique prefix)
    strategy            text NOT NULL,               -- cross_exchange | triangular | funding_rate
    action              text NOT NULL,               -- open | close ...
    symbol              text NOT NULL,               -- the symbol whose update found it
    legs                jsonb NOT NULL,              -- [{venue, symbol, side, price, qty, quote_usd, quote_age_ns}]
    notional_usd        double precision,
    spread_bps          double precision,            -- net of fees
    expected_profit_usd double precision,
    max_quote_age_ns    bigint,                      -- the oldest quote any leg was priced on, at detection
    tick_to_detect_ns   bigint,
    detected_at         timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arbitrage_opportunities_detected_at ON arbitrage_opportunities (detected_at);
CREATE INDEX arbitrage_opportunities_symbol ON arbitrage_opportunities (symbol, detected_at);
CREATE INDEX arbitrage_opportunities_strategy ON arbitrage_opportunities (strategy, detected_at);

-- Why an opportunity was (not) taken: one decision per opportunity.
CREATE TABLE risk_decisions (
    opportunity_id      bigint PRIMARY KEY,
    strategy            text,
    symbol              text,
    approved            boolean NOT NULL,
    reason              text NOT NULL,               -- "approved" or the rule that refused it
    detect_to_decide_ns bigint,
    decided_at          timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_decisions_decided_at ON risk_decisions (decided_at);
CREATE INDEX risk_decisions_reason ON risk_decisions (reason, decided_at);
CREATE INDEX risk_decisions_symbol ON risk_decisions (symbol, decided_at);

-- One row per state an order reached (NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, UNKNOWN).
CREATE TABLE orders (
    client_order_id     text NOT NULL,
    status              text NOT NULL,
    opportunity_id      bigint,
    venue               text,
    symbol              text,
    side                text,                        -- buy | sell
    price               numeric,                     -- exactly as sent (NULL for market orders)
    qty                 numeric,
    filled_qty          double precision,
    avg_price           double precision,
    error_code          integer,
    error_msg           text,
    sent_at             timestamptz,
    ack_at              timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_order_id, status)
);
CREATE INDEX orders_opportunity ON orders (opportunity_id);
CREATE INDEX orders_sent_at ON orders (sent_at);
CREATE INDEX orders_symbol ON orders (symbol, sent_at);

-- Keyed by symbol too: Binance numbers trades per symbol, so (venue, trade_id) alone is not unique there.
CREATE TABLE fills (
    venue               text NOT NULL,
    symbol              text NOT NULL,
    trade_id            text NOT NULL,               -- the venue's trade id
    client_order_id     text,
    opportunity_id      bigint,
    side                text,
    price               double precision,
    qty                 double precision,
    fee_usd             double precision,
    filled_at           timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol, trade_id)
);
CREATE INDEX fills_opportunity ON fills (opportunity_id);
CREATE INDEX fills_order ON fills (client_order_id);
CREATE INDEX fills_filled_at ON fills (filled_at);
CREATE INDEX fills_symbol ON fills (symbol, filled_at);

-- The outcome of all legs of one opportunity.
CREATE TABLE arbitrage_executions (
    opportunity_id      bigint PRIMARY KEY,
    symbol              text,
    buy_venue           text,
    sell_venue          text,
    bought_qty          double precision,
    sold_qty            double precision,
    buy_avg_price       double precision,
    sell_avg_price      double precision,
    fees_usd            double precision,
    pnl_usd             double precision,             -- realized on the matched quantity, net of fees
    notional_usd        double precision,
    outcome             text NOT NULL,                -- filled | partial | imbalanced | missed | failed
    tick_to_send_ns     bigint,
    done_at             timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arbitrage_executions_done_at ON arbitrage_executions (done_at);
CREATE INDEX arbitrage_executions_symbol ON arbitrage_executions (symbol, done_at);
CREATE INDEX arbitrage_executions_outcome ON arbitrage_executions (outcome, done_at);

-- One service's counters and gauges at one instant (taken every sinks.metrics_interval_s).
CREATE TABLE engine_metrics (
    service             text NOT NULL,
    at                  timestamptz NOT NULL,
    pid                 integer,
    state               text,
    counters            jsonb NOT NULL,
    gauges              jsonb NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, at)
);
CREATE INDEX engine_metrics_at ON engine_metrics (at);
