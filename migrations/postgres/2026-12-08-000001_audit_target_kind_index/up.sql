-- The activity log filters by target kind (newest first) and, through the API, by target id.
-- The old (target_kind, target_id) index made every audit entry, one per license validation,
-- insert at a place that depends on the key, so each entry dirtied a page of its own; and it
-- could not give a kind's entries newest first, so a kind filter sorted all of them.
-- (target_kind, id) takes each new entry at the end of its kind and gives that order directly.
-- A target id filter now reads its kind's entries newest first until the page is full, and
-- all of them to count its total.
DROP INDEX audit_logs_target_idx;
CREATE INDEX audit_logs_target_kind_idx ON audit_logs (target_kind, id);
