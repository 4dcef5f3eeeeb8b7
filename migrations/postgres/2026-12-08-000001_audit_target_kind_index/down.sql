DROP INDEX audit_logs_target_kind_idx;
CREATE INDEX audit_logs_target_idx ON audit_logs (target_kind, target_id);
