-- Tenants' schedules on sprites, their runs, the operator's period closes, and which
-- ledger rows compaction folded into hours. Times in unix milliseconds (UTC).

-- A cron schedule on one sprite: a command to run, or a checkpoint to take.
CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY,
    tenant_id        TEXT    NOT NULL REFERENCES tenants(id),
    sprite_id        INTEGER NOT NULL REFERENCES sprites(id),
    -- As the tenant typed it (five-field crontab in UTC, or an @name).
    cron             TEXT    NOT NULL,
    -- exec | checkpoint
    action           TEXT    NOT NULL,
    -- The command, a JSON array of strings (exec only).
    cmd              TEXT,
    comment          TEXT    NOT NULL DEFAULT '',
    -- The token that made it: a run acts with its rights, and stops with it.
    created_by_token TEXT REFERENCES api_tokens(id),
    created_at       INTEGER NOT NULL,
    -- The next time it is due; moved on when a run is claimed (missed runs are not kept).
    next_run_ms      BIGINT  NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_ms);
CREATE INDEX schedules_sprite ON schedules (tenant_id, sprite_id);

-- What each run did: ran (exit code, output tail), failed, or was refused (and why).
CREATE TABLE schedule_runs (
    id            INTEGER PRIMARY KEY,
    schedule_id   INTEGER NOT NULL REFERENCES schedules(id),
    started_ms    BIGINT  NOT NULL,
    finished_ms   BIGINT,
    -- running | ok | failed | refused
    outcome       TEXT    NOT NULL,
    exit_code     INTEGER,
    output_tail   TEXT,
    -- Why it failed or was refused (a problem code and its detail).
    detail        TEXT,
    checkpoint_id INTEGER
);
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, id);

-- Schedules vanish with their sprite, whoever deletes it.
CREATE TRIGGER schedules_vanish_with_sprite AFTER UPDATE OF deleted_at ON sprites
WHEN NEW.deleted_at IS NOT NULL
BEGIN
    DELETE FROM schedule_runs WHERE schedule_id IN (SELECT id FROM schedules WHERE sprite_id = NEW.id);
    DELETE FROM schedules WHERE sprite_id = NEW.id;
END;

-- A closed billing period per tenant: what the ledger and the meter's spend said when
-- the month was over (what an invoice is made from), written once.
CREATE TABLE period_closes (
    tenant_id       TEXT   NOT NULL REFERENCES tenants(id),
    period_start_ms BIGINT NOT NULL,
    period_end_ms   BIGINT NOT NULL,
    ledger_nanos    BIGINT NOT NULL,
    spent_nanos     BIGINT NOT NULL,
    closed_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period_start_ms)
);

-- Ledger rows compaction folded: 60 for an hour row (at the hour's first minute), 1
-- for a minute row.
ALTER TABLE usage_minutes ADD COLUMN minutes INTEGER NOT NULL DEFAULT 1;
