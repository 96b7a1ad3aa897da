-- Sprites and their checkpoints. A deleted sprite keeps its row (deleted_at set) so the
-- usage ledger can still name it; live names are unique per tenant.
CREATE TABLE sprites (
    id               INTEGER PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    name             TEXT NOT NULL,
    -- creating | running | paused | stopped | lost | deleting | deleted
    state            TEXT NOT NULL,
    -- user | idle | budget | limit | billing, when paused
    pause_reason     TEXT,
    cpus             INTEGER NOT NULL,
    memory_mb        INTEGER NOT NULL,
    disk_mb          INTEGER NOT NULL,
    idle_timeout_s   INTEGER NOT NULL,
    created_by_token TEXT REFERENCES api_tokens(id),
    created_at       INTEGER NOT NULL,
    last_active_at   INTEGER NOT NULL,
    -- What last kept the sprite awake: exec, files, console, checkpoint, resume, create.
    last_activity    TEXT NOT NULL DEFAULT 'create',
    deleted_at       INTEGER
);
CREATE UNIQUE INDEX sprites_live_name ON sprites (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE checkpoints (
    id          INTEGER PRIMARY KEY,
    sprite_id   INTEGER NOT NULL REFERENCES sprites(id),
    comment     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    size_bytes  INTEGER NOT NULL
);
CREATE INDEX checkpoints_sprite ON checkpoints (sprite_id);

-- Idempotent creates: the answer to a repeated Idempotency-Key is the first one.
CREATE TABLE idempotency_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    key        TEXT NOT NULL,
    sprite_id  INTEGER NOT NULL REFERENCES sprites(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
