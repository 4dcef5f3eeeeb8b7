DROP TRIGGER license_keys_search_update;
DROP TRIGGER license_keys_search_delete;
DROP TRIGGER license_keys_search_insert;
DROP TABLE license_keys_search;
