-- Substring search over license keys and customers without scanning: trigram GIN indexes on
-- the lower-cased columns the search compares (pg_trgm is a trusted extension, so the database
-- owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX license_keys_key_trgm_idx ON license_keys USING gin (lower(key) gin_trgm_ops);
CREATE INDEX license_keys_notes_trgm_idx ON license_keys USING gin (lower(notes) gin_trgm_ops);

-- The expiry sweeper's lookups: the next active key to expire, and those already past.
CREATE INDEX license_keys_status_expires_idx ON license_keys (status, expires_at);
