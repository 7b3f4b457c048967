-- 0002 jobs: the VOD pipeline (DESIGN §5, §6). A job is split into tasks;
-- tasks are dispatched through a transactional outbox; worker events are
-- applied at most once per (task, attempt, event); results land in
-- job_outputs; job_logs is the per-job log the API shows.

-- The enum order is the pipeline order; metrics list statuses with
-- enum_range(NULL::job_status), so keep it.
CREATE TYPE job_status AS ENUM
    ('queued', 'processing', 'stitching', 'uploading', 'completed', 'failed', 'cancelled');
CREATE TYPE task_type AS ENUM
    ('probe', 'video', 'audio', 'stitch', 'package', 'thumbnail', 'publish');
CREATE TYPE task_status AS ENUM
    ('pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled');

-- ---------------------------------------------------------------------------
-- jobs

CREATE TABLE jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL: a job is history (outputs, audit, metrics) that must outlive
    -- the account that submitted it.
    user_id         uuid REFERENCES users(id) ON DELETE SET NULL,
    source_url      text NOT NULL CHECK (source_url <> ''),
    status          job_status NOT NULL DEFAULT 'queued',
    priority        int NOT NULL DEFAULT 0,
    -- Profile ids; no FK from array elements, the kernel validates them at
    -- submission and a profile deleted later must not rewrite history.
    profiles        text[] NOT NULL
                    CHECK (cardinality(profiles) > 0 AND array_position(profiles, NULL) IS NULL),
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    publish_targets jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(publish_targets) = 'array'),
    webhook_urls    text[] NOT NULL DEFAULT '{}',
    -- Client-chosen key that makes a retried POST /v1/jobs return the first
    -- job instead of creating a second one; unique per user (see below).
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    progress        real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    eta_seconds     int CHECK (eta_seconds >= 0),
    encoded_seconds double precision NOT NULL DEFAULT 0 CHECK (encoded_seconds >= 0),
    -- Known once probed: the work to do, the denominator of progress.
    total_seconds   double precision CHECK (total_seconds >= 0),
    probe           jsonb CHECK (jsonb_typeof(probe) = 'object'), -- duration, streams, keyframes
    -- Why a queued job is not moving ("no worker with capability nvidia").
    wait_reason     text,
    error_code      text,
    error_message   text,
    -- SET NULL: a retry stands on its own once the original is purged.
    retry_of        uuid REFERENCES jobs(id) ON DELETE SET NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Terminal statuses are final and stamped: a job is finished exactly when
    -- its status says so (a late event cannot half-revive it).
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at),
    CHECK (status <> 'failed' OR error_message IS NOT NULL),
    CHECK (retry_of <> id)
);
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

-- One job per (user, idempotency key). A plain UNIQUE (user_id, key) would
-- let any number of NULL-user jobs (bootstrap admin token, anonymous API)
-- share a key, because NULLs are distinct; COALESCE puts them in one scope.
CREATE UNIQUE INDEX uq_jobs_idempotency
    ON jobs (COALESCE(user_id, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- When a user is deleted their jobs move to the NULL-user scope (ON DELETE
-- SET NULL), where their keys could collide with another deleted user's and
-- make the DELETE fail. Nobody can retry a deleted user's request, so their
-- keys are simply forgotten.
CREATE FUNCTION we_jobs_forget_idempotency() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.idempotency_key := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_forget_idempotency BEFORE UPDATE OF user_id ON jobs
    FOR EACH ROW WHEN (OLD.user_id IS NOT NULL AND NEW.user_id IS NULL)
    EXECUTE FUNCTION we_jobs_forget_idempotency();

-- The runbook's index: a user's unfinished jobs, newest first.
CREATE INDEX idx_jobs_user_created ON jobs(user_id, created_at DESC) WHERE status != 'completed';
-- All of a user's jobs (listing with completed ones; ON DELETE SET NULL).
CREATE INDEX idx_jobs_user_all ON jobs(user_id, created_at DESC);
-- Listing and counting by status (admin views, metrics, the watchdog).
CREATE INDEX idx_jobs_status_created ON jobs(status, created_at DESC);
CREATE INDEX idx_jobs_created ON jobs(created_at DESC);
CREATE INDEX idx_jobs_retry_of ON jobs(retry_of) WHERE retry_of IS NOT NULL;

-- ---------------------------------------------------------------------------
-- tasks

CREATE TABLE tasks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: tasks are parts of their job and mean nothing without it.
    job_id           uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    type             task_type NOT NULL,
    status           task_status NOT NULL DEFAULT 'pending',
    -- The profile a video/stitch/package task encodes; NULL for probe/audio.
    profile          text,
    -- Segment index for video tasks, ordinal for several tasks of one kind.
    seq              int NOT NULL DEFAULT 0 CHECK (seq >= 0),
    start_sec        double precision CHECK (start_sec >= 0),
    duration_sec     double precision CHECK (duration_sec > 0),
    -- Part of the NATS subject jobs.dispatch.<capability>: a '.', '*', '>'
    -- or blank here would route the task nowhere.
    capability       text NOT NULL DEFAULT 'cpu' CHECK (capability ~ '^[A-Za-z0-9_-]+$'),
    params           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    result           jsonb,
    -- No FK: worker rows may be purged, the task's history stays.
    worker_id        text,
    attempt          int NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     int NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    -- Set while dispatched/running; the sweeper re-queues a task whose lease
    -- ran out (its worker stopped heartbeating).
    lease_expires_at timestamptz,
    -- Retry backoff: not dispatched before this time.
    not_before       timestamptz,
    progress         real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    encoded_seconds  double precision NOT NULL DEFAULT 0 CHECK (encoded_seconds >= 0),
    output_key       text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CHECK (attempt <= max_attempts),
    CHECK (status <> 'running' OR worker_id IS NOT NULL),
    -- Finished exactly when terminal; a retry back to 'pending' clears it.
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

-- One task per (job, type, profile, seq): planning and "create the stitch
-- task" can use INSERT ... ON CONFLICT DO NOTHING and stay exactly-once
-- however many duplicate events arrive.
CREATE UNIQUE INDEX uq_tasks_job_type_profile_seq ON tasks(job_id, type, COALESCE(profile, ''), seq);
-- The runbook's index: a job's tasks by status.
CREATE INDEX idx_tasks_job_status ON tasks(job_id, status);
-- Dispatch: pending tasks whose backoff has passed.
CREATE INDEX idx_tasks_status_not_before ON tasks(status, not_before);
-- Lease sweeper: in-flight tasks by lease expiry.
CREATE INDEX idx_tasks_lease ON tasks(lease_expires_at)
    WHERE status IN ('dispatched', 'running');
-- A worker's in-flight tasks (drain, cancel, lost worker).
CREATE INDEX idx_tasks_worker ON tasks(worker_id) WHERE status IN ('dispatched', 'running');

-- ---------------------------------------------------------------------------
-- transactional outbox: a task's dispatch message is written in the same
-- transaction as the task; a publisher sends it to JetStream and stamps
-- published_at; a sweeper re-sends what was committed but not published.

CREATE TABLE task_outbox (
    id               bigserial PRIMARY KEY,
    -- CASCADE: a message for a task that no longer exists must not be sent.
    task_id          uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    attempt          int NOT NULL CHECK (attempt >= 0),
    subject          text NOT NULL CHECK (subject <> ''),
    payload          jsonb NOT NULL,
    publish_attempts int NOT NULL DEFAULT 0 CHECK (publish_attempts >= 0),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    -- One dispatch per attempt, matching the JetStream Nats-Msg-Id
    -- <task_id>.<attempt>: a double dispatch is a bug caught here.
    UNIQUE (task_id, attempt)
);
-- The publisher's queue: unpublished messages in commit order.
CREATE INDEX idx_task_outbox_unpublished ON task_outbox(id) WHERE published_at IS NULL;

-- ---------------------------------------------------------------------------
-- idempotent event application: the kernel inserts (task, attempt, event)
-- in the transaction that applies a worker event; a duplicate delivery hits
-- the primary key and changes nothing.

CREATE TABLE task_events_applied (
    -- CASCADE: the record only guards its task.
    task_id    uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    attempt    int NOT NULL CHECK (attempt >= 0),
    event      text NOT NULL CHECK (event <> ''), -- 'started', 'completed', 'failed', ...
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, attempt, event)
);

-- ---------------------------------------------------------------------------
-- outputs and logs

CREATE TABLE job_outputs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: the rows describe the job's files (the kernel deletes the
    -- stored objects before the job).
    job_id          uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    profile         text,
    kind            text NOT NULL CHECK (kind <> ''), -- video, playlist, thumbnail, ...
    storage_plugin  text NOT NULL CHECK (storage_plugin <> ''),
    -- Relative key inside the storage (jobs/<job_id>/<profile>/...): never
    -- absolute, never climbing out with '..'.
    storage_key     text NOT NULL
                    CHECK (storage_key <> '' AND storage_key !~ '(^/|(^|/)\.\.(/|$))'),
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    checksum_sha256 text NOT NULL CHECK (checksum_sha256 ~ '^[0-9a-f]{64}$'),
    content_type    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, storage_key)
);

CREATE TABLE job_logs (
    id         bigserial PRIMARY KEY,
    -- CASCADE: a job's log goes with the job.
    job_id     uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    -- No FK: writing a log line must never fail, and tasks go with the job
    -- anyway.
    task_id    uuid,
    level      text NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message    text NOT NULL,
    fields     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A job's log in order, paged by id.
CREATE INDEX idx_job_logs_job ON job_logs(job_id, id);
