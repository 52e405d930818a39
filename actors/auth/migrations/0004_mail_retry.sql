-- Each waiting mail has its own next attempt: one the receiving server refuses for now (4yz,
-- e.g. greylisting or a full mailbox) is retried later without holding up the mail behind it.
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at, id);
