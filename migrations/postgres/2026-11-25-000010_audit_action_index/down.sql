CREATE INDEX audit_logs_action_idx ON audit_logs (action);
