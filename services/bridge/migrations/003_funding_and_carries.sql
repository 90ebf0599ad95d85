-- 003: the funding carry. funding_payments: one row per funding settlement the executor booked from a venue's
-- income history, keyed like its record (venue, payment_id), so a replay, a spool backfill or a journal imported
-- twice inserts nothing twice. carry_positions: one row per spot-perpetual carry (its opening opportunity id).
--
-- Unlike every other table, a carry's row changes: the writer upserts each update, and an update replaces the
-- row only when it is newer — a closed state beats an open one, then the later updated_ns wins — so a replayed
-- or late update never reopens a closed carry (services/bridge/pg_tables.py, Table.newest).
-- Quantities and funding amounts are numeric: exactly the decimal text the executor sent.

CREATE TABLE funding_payments (
    venue               text NOT NULL,
    payment_id          text NOT NULL,               -- the venue's id of the settlement (Binance tranId, ...)
    symbol              text NOT NULL,
    asset               text NOT NULL,               -- what it was paid in (USDT)
    amount              numeric NOT NULL,            -- exact; > 0 received, < 0 paid
    amount_usd          double precision,
    carry_id            bigint,                      -- the carry it accrues to; NULL: none was open
    paid_at             timestamptz,                 -- the venue's settlement time
    booked_at           timestamptz,                 -- when the executor booked it
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, payment_id)
);
CREATE INDEX funding_payments_paid_at ON funding_payments (paid_at);
CREATE INDEX funding_payments_symbol ON funding_payments (symbol, paid_at);
CREATE INDEX funding_payments_carry ON funding_payments (carry_id);

CREATE TABLE carry_positions (
    carry_id            bigint PRIMARY KEY,          -- the opening opportunity's id
    symbol              text NOT NULL,
    spot_venue          text,                        -- NULL: unhedged (the perpetual alone)
    perp_venue          text NOT NULL,
    state               text NOT NULL,               -- open | closed
    spot_qty            numeric NOT NULL,            -- base held on the spot venue, exact
    perp_qty            numeric NOT NULL,            -- the perpetual position (negative: short), exact
    entry_basis_bps     double precision,            -- (perp entry - spot entry) / spot entry at the opening fills
    exit_basis_bps      double precision,            -- the same at the closing fills; 0 while open
    funding_usd         double precision,            -- collected so far (paid: negative)
    fees_usd            double precision,            -- every leg's commissions, opening and closing
    pnl_usd             double precision,            -- trading PnL of its executions + funding
    opened_at           timestamptz,
    closed_at           timestamptz,                 -- NULL while open
    updated_at          timestamptz NOT NULL,        -- the update this row holds
    updated_ns          bigint NOT NULL,             -- the same in ns: orders updates exactly
    recorded_at         timestamptz NOT NULL DEFAULT now()  -- when that update reached the database
);
CREATE INDEX carry_positions_state ON carry_positions (state, opened_at);
CREATE INDEX carry_positions_symbol ON carry_positions (symbol, opened_at);
