-- Sealed pairs are cleared once their grace is over (every second, by every replica): the
-- sweep reads only the rows that still hold one.
CREATE INDEX IF NOT EXISTS refresh_tokens_sealed_used_at ON refresh_tokens (used_at)
    WHERE successor_sealed IS NOT NULL;
