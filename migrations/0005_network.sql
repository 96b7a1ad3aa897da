-- Network policies: a tenant's default (`sprite_id` NULL) and each sprite's own rules,
-- as the JSON list the API took (`[{"domain", "action", "ports"?} | {"include"}]`).
CREATE TABLE network_policies (
    tenant_id  TEXT    NOT NULL REFERENCES tenants(id),
    sprite_id  INTEGER REFERENCES sprites(id),
    rules      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX network_policies_scope ON network_policies (tenant_id, coalesce(sprite_id, 0));
