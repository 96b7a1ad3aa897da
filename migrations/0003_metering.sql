-- Metering: the per-minute usage ledger, spend per scope and period, the meter's tick
-- bookkeeping and the alert outbox. Times here are unix milliseconds (UTC); money is
-- nano-dollars. BIGINT everywhere a value can pass 2^31 (PostgreSQL's INTEGER).

-- One row per sprite and ledger minute: integer usage totals, and the cost recomputed
-- from those totals each time the row grows.
CREATE TABLE usage_minutes (
    minute_ms      BIGINT NOT NULL,
    sprite_id      BIGINT NOT NULL REFERENCES sprites(id),
    tenant_id      TEXT   NOT NULL REFERENCES tenants(id),
    sprite_name    TEXT   NOT NULL,
    -- The token that created the sprite (its chain is what the spend counted against).
    token_id       TEXT,
    cpu_ns         BIGINT NOT NULL,
    memory_byte_ms BIGINT NOT NULL,
    disk_byte_ms   BIGINT NOT NULL,
    cost_nanos     BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, sprite_id)
);
CREATE INDEX usage_minutes_tenant ON usage_minutes (tenant_id, minute_ms);
CREATE INDEX usage_minutes_sprite ON usage_minutes (sprite_id, minute_ms);

-- Spend per scope ('tenant:<id>' or 'token:<id>') and billing period, written in the
-- same transaction as the ledger, with what the meter saw at its last tick.
CREATE TABLE scope_spend (
    scope                  TEXT   NOT NULL,
    period_start_ms        BIGINT NOT NULL,
    spent_nanos            BIGINT NOT NULL,
    -- Bytes the scope's sprites stored (running or not, checkpoints included).
    stored_bytes           BIGINT NOT NULL DEFAULT 0,
    sprites                BIGINT NOT NULL DEFAULT 0,
    -- Actual spend per second over the last minute.
    burn_nanos_per_s       BIGINT NOT NULL DEFAULT 0,
    -- All running sprites flat out (vCPUs and memory), per second.
    worst_burn_nanos_per_s BIGINT NOT NULL DEFAULT 0,
    updated_ms             BIGINT NOT NULL,
    PRIMARY KEY (scope, period_start_ms)
);

-- The meter's last tick: its id moves on in every tick's transaction.
CREATE TABLE meter_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    tick_id   BIGINT NOT NULL,
    at_ms     BIGINT NOT NULL
);
INSERT INTO meter_state (singleton, tick_id, at_ms) VALUES (1, 0, 0);

-- Each sprite's last sample, written with the ledger: the baseline of the next delta.
CREATE TABLE meter_samples (
    sprite_id    BIGINT PRIMARY KEY REFERENCES sprites(id),
    tick_id      BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL,
    -- The driver's cumulative counter as last read (restarts at 0 with the machine).
    cpu_ns       BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    disk_bytes   BIGINT NOT NULL,
    -- Everything the sprite has cost so far: the live `cost_nanos`.
    cost_nanos   BIGINT NOT NULL
);

-- Mail to send, written in the transaction that decided it (threshold alerts).
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    tenant_id          TEXT    NOT NULL REFERENCES tenants(id),
    -- 'threshold'
    kind               TEXT    NOT NULL,
    scope              TEXT    NOT NULL,
    threshold_pct      INTEGER NOT NULL,
    period_start_ms    BIGINT  NOT NULL,
    to_email           TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    created_at_ms      BIGINT  NOT NULL,
    sent_at_ms         BIGINT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    next_attempt_at_ms BIGINT  NOT NULL
);
CREATE UNIQUE INDEX outbox_once ON outbox (scope, threshold_pct, period_start_ms);
CREATE INDEX outbox_pending ON outbox (sent_at_ms, next_attempt_at_ms);
CREATE INDEX outbox_tenant ON outbox (tenant_id, created_at_ms);
