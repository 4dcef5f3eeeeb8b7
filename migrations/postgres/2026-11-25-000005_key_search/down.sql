DROP INDEX license_keys_notes_trgm_idx;
DROP INDEX license_keys_key_trgm_idx;
