-- Orders, their items and status history, idempotency keys, and the transactional outbox.

CREATE SEQUENCE order_number_seq;

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN
                        ('new', 'paid', 'picking', 'packed', 'shipped', 'delivered', 'cancelled')),
    customer_email  text NOT NULL,
    customer_name   text NOT NULL,
    currency        char(3) NOT NULL,
    total           numeric(20, 2) NOT NULL CHECK (total >= 0),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Keyset pagination (newest first), with and without the filters staff use most.
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_email_created_idx ON orders (lower(customer_email), created_at DESC, id DESC);
-- Incremental readers (analytics) follow (updated_at, id).
CREATE INDEX orders_updated_idx ON orders (updated_at, id);

CREATE TABLE order_items (
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     integer NOT NULL,
    sku         text NOT NULL,
    name        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price  numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id        bigserial PRIMARY KEY,
    order_id  uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status    text NOT NULL,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    by        text NOT NULL
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

CREATE TABLE idempotency_keys (
    key           text PRIMARY KEY,
    request_hash  text NOT NULL,
    order_id      uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    routing_key   text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay at commit time instead of making it poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
