CREATE INDEX audit_logs_actor_id_idx ON audit_logs (actor_id);
