-- (action) is the leading column of audit_logs_action_created_at_idx, which serves every
-- lookup by action; the second index only cost a b-tree write per audit entry, and every
-- license validation writes one.
DROP INDEX audit_logs_action_idx;
