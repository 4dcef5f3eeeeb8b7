-- Signatures of webhook deliveries already accepted, so a replayed delivery is refused on every
-- instance. Rows older than the signature's validity window are pruned.
CREATE TABLE webhook_deliveries (
    signature  TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX webhook_deliveries_created_at_idx ON webhook_deliveries (created_at);
