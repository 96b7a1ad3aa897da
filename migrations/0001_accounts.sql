-- Tenants and their API tokens. Times are unix seconds (UTC); money is nano-dollars.
CREATE TABLE tenants (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    org             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Monthly spend cap; NULL means the operator's default cap.
    cap_nanos       INTEGER,
    thresholds_pct  TEXT NOT NULL DEFAULT '[50,80,100]',
    alert_email     TEXT,
    -- Scaling limits the tenant chose; NULL means the operator's maximum.
    max_running_sprites        INTEGER,
    max_total_cpus             INTEGER,
    max_total_memory_mb        INTEGER,
    max_disk_mb_per_sprite     INTEGER,
    max_checkpoints_per_sprite INTEGER,
    idle_timeout_s             INTEGER
);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    parent_id     TEXT REFERENCES api_tokens(id),
    -- 'session' (signup/login) or 'api' (minted).
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    -- Space-separated scope names.
    scopes        TEXT NOT NULL,
    -- SHA-256 of the whole bearer string: the secret itself is never stored.
    secret_sha256 TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    budget_nanos  INTEGER,
    -- JSON array of sprite names the token is limited to; NULL means all.
    sprites       TEXT,
    revoked_at    INTEGER
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, kind);
CREATE INDEX api_tokens_parent ON api_tokens (parent_id);
