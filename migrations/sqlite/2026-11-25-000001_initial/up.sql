-- keysync's data model on SQLite. Every table carries created_at/updated_at; rows an admin
-- edits carry a version for optimistic concurrency (ETag / If-Match).

CREATE TABLE admin_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    last_login_at TIMESTAMP,
    version       BIGINT NOT NULL DEFAULT 1,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT NOT NULL UNIQUE,
    admin_id     BIGINT NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    ip           TEXT,
    user_agent   TEXT,
    expires_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX sessions_admin_id_idx ON sessions (admin_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE,
    company    TEXT NOT NULL DEFAULT '',
    notes      TEXT NOT NULL DEFAULT '',
    version    BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE license_keys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'suspended', 'revoked', 'expired')),
    customer_id      BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    expires_at       TIMESTAMP,
    max_activations  INTEGER CHECK (max_activations IS NULL OR max_activations > 0),
    activation_count INTEGER NOT NULL DEFAULT 0 CHECK (activation_count >= 0),
    validation_count BIGINT NOT NULL DEFAULT 0,
    download_count   BIGINT NOT NULL DEFAULT 0,
    last_used        TIMESTAMP,
    activated_at     TIMESTAMP,
    notes            TEXT NOT NULL DEFAULT '',
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX license_keys_customer_id_idx ON license_keys (customer_id);
CREATE INDEX license_keys_status_idx ON license_keys (status);
CREATE INDEX license_keys_updated_at_idx ON license_keys (updated_at);

CREATE TABLE activations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    license_key_id BIGINT NOT NULL REFERENCES license_keys (id) ON DELETE CASCADE,
    fingerprint    TEXT NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (license_key_id, fingerprint)
);

CREATE TABLE releases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    repo           TEXT NOT NULL,
    tag_name       TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    body           TEXT NOT NULL DEFAULT '',
    published_at   TIMESTAMP,
    assets         TEXT NOT NULL DEFAULT '[]',
    is_latest      BOOLEAN NOT NULL DEFAULT 0,
    etag           TEXT,
    fetched_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    download_count BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (repo, tag_name)
);

CREATE TABLE audit_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_kind  TEXT NOT NULL,
    actor_id    BIGINT,
    actor_label TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    summary     TEXT,
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);
CREATE INDEX audit_logs_action_idx ON audit_logs (action);

-- The change feed. `cursor` is the position a client resumes from. SQLite has one writer at a
-- time, so cursors become visible in commit order; AUTOINCREMENT never reuses a pruned cursor.
CREATE TABLE changes (
    cursor      INTEGER PRIMARY KEY AUTOINCREMENT,
    resource    TEXT NOT NULL,
    resource_id BIGINT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    version     BIGINT NOT NULL,
    actor       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX changes_created_at_idx ON changes (created_at);

CREATE TABLE server_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
