DROP INDEX audit_logs_target_idx;
DROP INDEX audit_logs_actor_id_idx;
DROP INDEX audit_logs_action_created_at_idx;
DROP INDEX customers_name_idx;
DROP INDEX customers_created_at_idx;
DROP INDEX license_keys_created_at_idx;
