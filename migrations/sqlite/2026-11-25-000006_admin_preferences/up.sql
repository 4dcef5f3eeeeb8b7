-- Each admin's sync preferences, kept as one JSON document so a new preference needs no
-- migration (missing fields take their defaults when read). Deleted with the admin.
CREATE TABLE admin_preferences (
    admin_id    BIGINT PRIMARY KEY REFERENCES admin_users (id) ON DELETE CASCADE,
    preferences TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
