-- Secrets: values a tenant's sprites may use without ever holding them. The value is
-- encrypted with the install's key (`DATA_DIR/secrets.key`); sprites see the
-- placeholder, which the way out swaps for the value on the way to `hosts`.
CREATE TABLE secrets (
    tenant_id   TEXT    NOT NULL REFERENCES tenants(id),
    name        TEXT    NOT NULL,
    sealed      BLOB    NOT NULL,
    hosts       TEXT    NOT NULL,
    header      TEXT,
    format      TEXT,
    placeholder TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
