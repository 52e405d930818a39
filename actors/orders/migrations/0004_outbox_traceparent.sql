-- The W3C trace context of the request that made each event (NULL for rows written before
-- tracing): the relay sends it on as the RabbitMQ message's `traceparent` header.
ALTER TABLE outbox ADD COLUMN traceparent text;
