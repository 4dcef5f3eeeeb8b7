-- Indexes for the admin API's lists, the dashboard's 24-hour counts and the audit filters.
CREATE INDEX license_keys_created_at_idx ON license_keys (created_at, id);
CREATE INDEX customers_created_at_idx ON customers (created_at, id);
CREATE INDEX customers_name_idx ON customers (name, id);
CREATE INDEX audit_logs_action_created_at_idx ON audit_logs (action, created_at);
CREATE INDEX audit_logs_actor_id_idx ON audit_logs (actor_id);
CREATE INDEX audit_logs_target_idx ON audit_logs (target_kind, target_id);
