-- Auto-recharge for prepaid mode: a tenant's opt-in (threshold and amount), the card
-- Checkout saved for off-session charges, and each recharge Corral decides on. Times are
-- unix milliseconds (UTC); money is nano-dollars.

ALTER TABLE billing_accounts ADD COLUMN auto_recharge_enabled INTEGER NOT NULL DEFAULT 0;
-- Recharge when the balance falls below this.
ALTER TABLE billing_accounts ADD COLUMN auto_recharge_below_nanos BIGINT;
-- Charge this much each time.
ALTER TABLE billing_accounts ADD COLUMN auto_recharge_amount_nanos BIGINT;
-- Why auto-recharge was turned off by Corral (a declined card), and when.
ALTER TABLE billing_accounts ADD COLUMN auto_recharge_off_reason TEXT;
ALTER TABLE billing_accounts ADD COLUMN auto_recharge_off_ms BIGINT;
-- The PaymentIntent of the tenant's latest paid Checkout, whose card was saved
-- (`setup_future_usage=off_session`), and that card once read from it.
ALTER TABLE billing_accounts ADD COLUMN checkout_payment_intent TEXT;
ALTER TABLE billing_accounts ADD COLUMN payment_method_id TEXT;

-- One row per recharge, numbered per tenant. The row is written before Stripe is
-- called and its Idempotency-Key (`corral-recharge-{tenant}-{seq}`) derives from the
-- number, so a retry after a crash or a lost answer is the same charge, never a second.
-- States: 'pending' (Stripe not yet sure to have it), 'charged' (Stripe took it; the
-- credit waits for `payment_intent.succeeded`), 'succeeded' (credited), 'failed'.
CREATE TABLE auto_recharges (
    tenant_id          TEXT    NOT NULL REFERENCES tenants(id),
    seq                INTEGER NOT NULL,
    amount_nanos       BIGINT  NOT NULL,
    state              TEXT    NOT NULL,
    payment_intent_id  TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms    BIGINT  NOT NULL,
    last_error         TEXT,
    created_ms         BIGINT  NOT NULL,
    updated_ms         BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
-- At most one recharge in flight per tenant.
CREATE UNIQUE INDEX auto_recharges_open ON auto_recharges (tenant_id)
    WHERE state IN ('pending', 'charged');
