-- Bytes moved through the way out, metered and priced like CPU and memory: per ledger
-- row, and the counter each sprite's last sample read.
ALTER TABLE usage_minutes ADD COLUMN network_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meter_samples ADD COLUMN network_bytes BIGINT NOT NULL DEFAULT 0;
