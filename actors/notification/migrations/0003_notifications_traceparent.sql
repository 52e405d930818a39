-- The W3C trace context each notification was made in (the order request's, carried by the
-- outbox row and the RabbitMQ message; or the webhook request's). NULL for older rows.
ALTER TABLE notifications ADD COLUMN traceparent text;
