-- 0003 live: live channels (RTMP ingest -> HLS, archive to VOD) and
-- restreaming one input to many RTMP destinations (DESIGN §10).

-- ---------------------------------------------------------------------------
-- streams

CREATE TABLE streams (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL: a channel's history (archives, stats) outlives its owner's
    -- account; an admin can reassign it.
    user_id           uuid REFERENCES users(id) ON DELETE SET NULL,
    title             text NOT NULL DEFAULT '',
    description       text NOT NULL DEFAULT '',
    -- The key authorises publishing, so only its hash is stored (verified in
    -- on_publish); the prefix lets a user recognise it.
    stream_key_hash   text NOT NULL UNIQUE CHECK (length(stream_key_hash) >= 32),
    stream_key_prefix text NOT NULL CHECK (length(stream_key_prefix) BETWEEN 1 AND 16),
    is_live           boolean NOT NULL DEFAULT false,
    archive_enabled   boolean NOT NULL DEFAULT false,
    -- SET NULL: deleting the VOD made from an archive leaves the stream.
    archive_job_id    uuid REFERENCES jobs(id) ON DELETE SET NULL,
    ingest_url        text,            -- rtmp://host/app, without the key
    ingest_server     text,            -- which live plugin instance holds it
    playback_url      text,            -- HLS playlist
    current_viewers   int NOT NULL DEFAULT 0 CHECK (current_viewers >= 0),
    last_telemetry    jsonb,           -- bitrate, fps, resolution, at last report
    started_at        timestamptz,
    ended_at          timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT is_live OR started_at IS NOT NULL),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at)
);
CREATE TRIGGER streams_touch BEFORE UPDATE ON streams
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

-- The runbook's index: a user's live streams.
CREATE INDEX idx_streams_user_live ON streams(user_id) WHERE is_live = true;
-- All of a user's streams (listing; ON DELETE SET NULL).
CREATE INDEX idx_streams_user ON streams(user_id, created_at DESC);
CREATE INDEX idx_streams_archive_job ON streams(archive_job_id) WHERE archive_job_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- restreams

CREATE TYPE restream_input_type AS ENUM ('rtmp', 'file', 'job');
CREATE TYPE restream_status AS ENUM
    ('idle', 'scheduled', 'running', 'stopping', 'failed', 'completed');
CREATE TYPE restream_destination_status AS ENUM
    ('idle', 'connecting', 'running', 'failed', 'stopped');

CREATE TABLE restream_jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL, like streams: an admin can still stop or inspect it.
    user_id       uuid REFERENCES users(id) ON DELETE SET NULL,
    title         text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    input_type    restream_input_type NOT NULL,
    input_url     text,
    -- SET NULL: deleting the finished job that fed a restream keeps the
    -- restream's record (it just has no source to run again).
    source_job_id uuid REFERENCES jobs(id) ON DELETE SET NULL,
    status        restream_status NOT NULL DEFAULT 'idle',
    -- NULL: start immediately; else {"at": ...} or {"cron": ...}.
    schedule      jsonb CHECK (jsonb_typeof(schedule) = 'object'),
    loop          boolean NOT NULL DEFAULT false,
    simulate_live boolean NOT NULL DEFAULT false, -- ffmpeg -re
    stats         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(stats) = 'object'),
    last_error    text,
    started_at    timestamptz,
    stopped_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- rtmp and file inputs need a URL. (A 'job' input's source_job_id may
    -- become NULL through ON DELETE SET NULL, so it cannot be required here.)
    CHECK (input_type = 'job' OR input_url IS NOT NULL)
);
CREATE TRIGGER restream_jobs_touch BEFORE UPDATE ON restream_jobs
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();
CREATE INDEX idx_restream_jobs_user ON restream_jobs(user_id, created_at DESC);
-- The scheduler's scan.
CREATE INDEX idx_restream_jobs_status ON restream_jobs(status)
    WHERE status IN ('scheduled', 'running', 'stopping');
CREATE INDEX idx_restream_jobs_source_job ON restream_jobs(source_job_id)
    WHERE source_job_id IS NOT NULL;

CREATE TABLE restream_destinations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a destination is part of its restream.
    restream_id       uuid NOT NULL REFERENCES restream_jobs(id) ON DELETE CASCADE,
    platform          text NOT NULL CHECK (platform <> ''), -- youtube, twitch, kick, rumble, rtmp
    name              text NOT NULL DEFAULT '',
    rtmp_url          text NOT NULL CHECK (rtmp_url ~* '^rtmps?://'),
    -- Needed in clear to push to the platform; write-only in the API.
    stream_key_secret text NOT NULL DEFAULT '',
    enabled           boolean NOT NULL DEFAULT true,
    status            restream_destination_status NOT NULL DEFAULT 'idle',
    stats             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(stats) = 'object'),
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER restream_destinations_touch BEFORE UPDATE ON restream_destinations
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();
CREATE INDEX idx_restream_destinations_restream ON restream_destinations(restream_id);
