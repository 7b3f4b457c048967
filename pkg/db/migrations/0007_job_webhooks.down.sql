-- Undoes 0007_job_webhooks.up.sql. The job-scoped endpoints go with the
-- column: without it they would receive every job's events.
DELETE FROM webhooks WHERE job_id IS NOT NULL;
DROP INDEX idx_webhooks_job;
ALTER TABLE webhooks DROP COLUMN job_id;
