-- The notifications log. One row per order event: the unique event_id is what makes
-- handling an event idempotent (a redelivered event finds its row and adds nothing).

CREATE TABLE notifications (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    order_id      uuid NOT NULL,
    order_number  text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('order_created', 'status_changed', 'order_cancelled')),
    status        text NOT NULL,
    urgency       text NOT NULL CHECK (urgency IN ('normal', 'critical')),
    title         text NOT NULL,
    message       text NOT NULL,
    url           text NOT NULL,
    source        text NOT NULL CHECK (source IN ('rabbitmq', 'webhook')),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX notifications_order_idx ON notifications (order_id, id);

-- Webhook signatures already accepted, so a captured request cannot be replayed.
-- Rows older than the accepted clock skew are pruned.
CREATE TABLE webhook_signatures (
    signature  text PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_signatures_seen_idx ON webhook_signatures (seen_at);

-- Wake every replica's fan-out at commit time (it then reads the new rows by id).
CREATE FUNCTION notifications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifications_log', '');
    RETURN NULL;
END $$;
CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_notify();
