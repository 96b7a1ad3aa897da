-- Billing through Stripe: a customer per tenant, prepaid credit, the payment state
-- behind `pause_reason: billing`, Stripe events applied once, and the outbox of meter
-- events. Times are unix milliseconds (UTC); money is nano-dollars.

CREATE TABLE billing_accounts (
    tenant_id          TEXT   PRIMARY KEY REFERENCES tenants(id),
    -- Stripe's customer, created lazily (with an Idempotency-Key naming the tenant).
    customer_id        TEXT,
    -- Prepaid credit ever added (completed Checkout sessions); the balance is this
    -- less everything the tenant's sprites have spent.
    credited_nanos     BIGINT NOT NULL DEFAULT 0,
    -- 'ok', 'past_due' (an invoice failed; sprites run until the grace ends) or
    -- 'suspended' (grace over: the hard-cap rule gives the tenant nothing to spend).
    payment_state      TEXT   NOT NULL DEFAULT 'ok',
    past_due_since_ms  BIGINT,
    -- The newest invoice event applied (Stripe's `created`, seconds): an older one
    -- arriving late must not undo it.
    invoice_event_at_s BIGINT NOT NULL DEFAULT 0,
    subscription_id    TEXT,
    -- Metered mode: usage from this minute on is Stripe's to invoice, and ledger
    -- minutes before `pushed_through_ms` are in the meter-event outbox.
    metered_since_ms   BIGINT,
    pushed_through_ms  BIGINT,
    updated_ms         BIGINT NOT NULL
);

-- Stripe events applied, by Stripe's event id: a duplicate delivery changes nothing.
CREATE TABLE stripe_events (
    id         TEXT   PRIMARY KEY,
    type       TEXT   NOT NULL,
    created_s  BIGINT NOT NULL,
    tenant_id  TEXT,
    applied_ms BIGINT NOT NULL
);

-- Meter events to send, written with the watermark that produced them. The identifier
-- is deterministic (`corral:{tenant}:{minute}`), so a resend after a crash or a lost
-- answer is de-duplicated by Stripe, never counted twice.
CREATE TABLE meter_event_outbox (
    identifier    TEXT   PRIMARY KEY,
    tenant_id     TEXT   NOT NULL REFERENCES tenants(id),
    customer_id   TEXT   NOT NULL,
    -- 'usage' (one ledger minute) or 'adjustment' (reconciliation).
    kind          TEXT   NOT NULL,
    timestamp_s   BIGINT NOT NULL,
    value_nanos   BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    sent_ms       BIGINT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX meter_event_outbox_pending ON meter_event_outbox (sent_ms, created_ms);
CREATE INDEX meter_event_outbox_tenant ON meter_event_outbox (tenant_id, timestamp_s);
