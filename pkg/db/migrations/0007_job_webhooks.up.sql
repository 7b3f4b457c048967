-- 0007 job webhooks: a job's webhook_urls become webhooks rows scoped to
-- that job (docs/webhooks.md "Per-job endpoints"). They receive only the
-- events whose resource is their job; NULL job_id is an ordinary webhook.

-- CASCADE: deleting a job deletes its endpoints and their deliveries.
ALTER TABLE webhooks ADD COLUMN job_id uuid REFERENCES jobs(id) ON DELETE CASCADE;
-- The cascade on job delete, and "the endpoints of job J".
CREATE INDEX idx_webhooks_job ON webhooks(job_id) WHERE job_id IS NOT NULL;
