-- Images a tenant saved from its sprites. `ready` images can be used; a `deleting` one
-- was deleted by its tenant but its files stay (and are still billed) while sprites made
-- from it, or images saved over it, stand on them; `gone` once the files are removed.
CREATE TABLE images (
    id               INTEGER PRIMARY KEY,
    tenant_id        TEXT    NOT NULL REFERENCES tenants(id),
    name             TEXT    NOT NULL,
    -- saving | ready | deleting | gone
    state            TEXT    NOT NULL,
    source_sprite    TEXT    NOT NULL,
    size_bytes       BIGINT  NOT NULL DEFAULT 0,
    created_by_token TEXT REFERENCES api_tokens(id),
    created_at       INTEGER NOT NULL,
    deleted_at       INTEGER
);
CREATE UNIQUE INDEX images_live_name ON images (tenant_id, name) WHERE deleted_at IS NULL;

-- The image a sprite was made from: an operator image's name, or a tenant image (its
-- name and `image_id`). Sprites made before images had names ran the minimal one.
ALTER TABLE sprites ADD COLUMN image TEXT NOT NULL DEFAULT 'minimal';
ALTER TABLE sprites ADD COLUMN image_id INTEGER REFERENCES images(id);

-- The ledger bills stored images as well as sprites: a ledger item is a sprite
-- (`sprite_id` = sprites.id) or a tenant image (`sprite_id` = -images.id), so the two
-- tables lose their foreign key to `sprites` (SQLite rebuilds a table to drop one).
CREATE TABLE usage_minutes_v4 (
    minute_ms      BIGINT NOT NULL,
    sprite_id      BIGINT NOT NULL,
    tenant_id      TEXT   NOT NULL REFERENCES tenants(id),
    sprite_name    TEXT   NOT NULL,
    token_id       TEXT,
    cpu_ns         BIGINT NOT NULL,
    memory_byte_ms BIGINT NOT NULL,
    disk_byte_ms   BIGINT NOT NULL,
    cost_nanos     BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, sprite_id)
);
INSERT INTO usage_minutes_v4 SELECT minute_ms, sprite_id, tenant_id, sprite_name, token_id,
    cpu_ns, memory_byte_ms, disk_byte_ms, cost_nanos FROM usage_minutes;
DROP TABLE usage_minutes;
ALTER TABLE usage_minutes_v4 RENAME TO usage_minutes;
CREATE INDEX usage_minutes_tenant ON usage_minutes (tenant_id, minute_ms);
CREATE INDEX usage_minutes_sprite ON usage_minutes (sprite_id, minute_ms);

CREATE TABLE meter_samples_v4 (
    sprite_id    BIGINT PRIMARY KEY,
    tick_id      BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL,
    cpu_ns       BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    disk_bytes   BIGINT NOT NULL,
    cost_nanos   BIGINT NOT NULL
);
INSERT INTO meter_samples_v4 SELECT sprite_id, tick_id, at_ms, cpu_ns, memory_bytes,
    disk_bytes, cost_nanos FROM meter_samples;
DROP TABLE meter_samples;
ALTER TABLE meter_samples_v4 RENAME TO meter_samples;
