-- A sprite's own bandwidth through the way out, megabits per second, at most the
-- operator's `CORRAL_NETWORK_MBPS`; NULL: the operator's.
ALTER TABLE sprites ADD COLUMN network_mbps INTEGER;
