-- A refresh whose answer was lost may be retried for a short grace: the rotated token's row
-- keeps its successor's hash (to tell whether the new token was used since) and the new pair
-- sealed with a key derived from the old token itself, so only its holder can open it.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash text;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea;
