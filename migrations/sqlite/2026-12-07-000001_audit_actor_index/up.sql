-- No query reads audit_logs by actor_id (the activity log filters by actor_label), but every
-- audit entry, one per license validation, wrote a b-tree entry into this index.
DROP INDEX audit_logs_actor_id_idx;
