-- When each token was last used to authenticate (unix seconds, to the minute: the
-- server writes it at most once a minute per token), shown beside the token's row.
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
