-- Each sprite's URL: the port inside the sprite its URL reaches, and who may open it
-- ('sprite': a token with the sprites:http scope or a link's cookie; 'public': anyone).
ALTER TABLE sprites ADD COLUMN http_port INTEGER NOT NULL DEFAULT 8080;
ALTER TABLE sprites ADD COLUMN url_auth TEXT NOT NULL DEFAULT 'sprite';
-- The front door finds a sprite by its name, then its tenant's handle.
CREATE INDEX sprites_live_by_name ON sprites (name) WHERE deleted_at IS NULL;
