-- Substring search over license keys without scanning the table: an FTS5 index of trigrams of
-- each key and its notes, kept in step with license_keys by triggers. Searches of three or more
-- characters use it; shorter ones fall back to a scan.
CREATE VIRTUAL TABLE license_keys_search USING fts5(
    key, notes,
    content = 'license_keys', content_rowid = 'id',
    tokenize = 'trigram'
);

CREATE TRIGGER license_keys_search_insert AFTER INSERT ON license_keys BEGIN
    INSERT INTO license_keys_search (rowid, key, notes) VALUES (new.id, new.key, new.notes);
END;

CREATE TRIGGER license_keys_search_delete AFTER DELETE ON license_keys BEGIN
    INSERT INTO license_keys_search (license_keys_search, rowid, key, notes)
    VALUES ('delete', old.id, old.key, old.notes);
END;

CREATE TRIGGER license_keys_search_update AFTER UPDATE OF key, notes ON license_keys BEGIN
    INSERT INTO license_keys_search (license_keys_search, rowid, key, notes)
    VALUES ('delete', old.id, old.key, old.notes);
    INSERT INTO license_keys_search (rowid, key, notes) VALUES (new.id, new.key, new.notes);
END;

INSERT INTO license_keys_search (license_keys_search) VALUES ('rebuild');

-- The expiry sweeper's lookups: the next active key to expire, and those already past.
CREATE INDEX license_keys_status_expires_idx ON license_keys (status, expires_at);
