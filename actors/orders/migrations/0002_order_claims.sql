-- Orders an account proved it may see (order number + the order's email) without having
-- verified that email address: a registered customer sees these plus, once verified, the
-- orders placed under its address. account_id is the auth service's user id.
CREATE TABLE order_claims (
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, account_id)
);
CREATE INDEX order_claims_account_idx ON order_claims (account_id);
