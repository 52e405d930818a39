-- Proof of the address (verification) and password reset go through links e-mailed to the
-- account's address. The mail itself goes through an outbox, so a mail accepted by the API is
-- never lost while the SMTP server is away.

ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- Only a hash of each link's token is stored (256 random bits, like refresh tokens).
CREATE TABLE email_tokens (
    token_hash  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify-email', 'password-reset')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_tokens_user_idx ON email_tokens (user_id);

-- A row is deleted once the SMTP server accepted it: the body holds a live link.
CREATE TABLE mail_outbox (
    id          bigserial PRIMARY KEY,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
