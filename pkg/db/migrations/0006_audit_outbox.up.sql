-- 0006 audit outbox: audit_log is written first and published to the
-- audit.> JetStream subjects afterwards (src/kernel/audit.c). published_at
-- marks the rows the stream has; the sweeper publishes the others.

ALTER TABLE audit_log ADD COLUMN published_at timestamptz;
-- Rows written before this column existed are not re-published.
UPDATE audit_log SET published_at = created_at;
-- What the sweeper looks for: few rows, oldest first.
CREATE INDEX idx_audit_log_unpublished ON audit_log(created_at) WHERE published_at IS NULL;
