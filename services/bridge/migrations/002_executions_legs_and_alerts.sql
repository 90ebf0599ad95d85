-- Executions of any strategy: every order (legs, unwinds, hedges), the exact balance moves, the inventory
-- left over, and why an execution ended as it did. Alerts: breakers, the kill switch, orphaned positions.
ALTER TABLE arbitrage_executions
    ADD COLUMN strategy      text,
    ADD COLUMN legs          jsonb,
    ADD COLUMN deltas        jsonb,
    ADD COLUMN residual_usd  double precision,
    ADD COLUMN note          text;

CREATE TABLE risk_alerts (
    source              text NOT NULL,
    kind                text NOT NULL,                -- failure_breaker | loss_breaker | orphan | kill_switch | ...
    message             text NOT NULL,
    until_at            timestamptz,                  -- NULL: until an operator clears it
    at                  timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, kind, at)
);
CREATE INDEX risk_alerts_at ON risk_alerts (at);
