-- Undoes 0006_audit_outbox.up.sql.
DROP INDEX idx_audit_log_unpublished;
ALTER TABLE audit_log DROP COLUMN published_at;
