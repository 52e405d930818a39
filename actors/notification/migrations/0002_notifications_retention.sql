-- The log keeps NOTIFY_RETENTION_DAYS of notifications; pruning finds the old ones by age.
CREATE INDEX notifications_created_idx ON notifications (created_at);
