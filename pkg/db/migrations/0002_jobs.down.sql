-- Undoes 0002_jobs.up.sql, in reverse order (indexes, triggers and the
-- outbox sequences go with their tables).
DROP TABLE job_logs;
DROP TABLE job_outputs;
DROP TABLE task_events_applied;
DROP TABLE task_outbox;
DROP TABLE tasks;
DROP TABLE jobs;
DROP FUNCTION we_jobs_forget_idempotency();
DROP TYPE task_status;
DROP TYPE task_type;
DROP TYPE job_status;
