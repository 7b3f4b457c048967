-- 0001 init: identity (users, API tokens), encoding profiles and the worker
-- registry, plus the updated_at trigger every later table uses.
--
-- Conventions for every migration in this directory:
--   * each file runs in one transaction (bin/migrate wraps it), so no
--     CREATE INDEX CONCURRENTLY and no use of an enum value added in the same
--     file;
--   * timestamps are timestamptz NOT NULL DEFAULT now(); updated_at is kept
--     by we_touch_updated_at() unless the statement sets it explicitly;
--   * every foreign key states its ON DELETE rule and why;
--   * statuses are enums, so a typo in a query fails instead of matching
--     nothing;
--   * secrets are stored hashed where we only need to verify them (tokens,
--     stream keys) and in plain text only where we must use them (webhook
--     signing secrets, restream keys, plugin secrets), and the API never
--     returns those.

-- Keeps updated_at honest without trusting every UPDATE to set it. A
-- statement that assigns updated_at itself (tests backdating a row, say) wins.
CREATE FUNCTION we_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------
-- users and API tokens

CREATE TYPE user_role AS ENUM ('viewer', 'operator', 'admin');

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL UNIQUE
                  CHECK (username = btrim(username) AND length(username) BETWEEN 1 AND 128),
    -- NULL for users that only sign in through an external provider (OIDC).
    password_hash text,
    role          user_role NOT NULL DEFAULT 'viewer',
    disabled      boolean NOT NULL DEFAULT false,
    last_login_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a token is a credential of its user; it must never outlive them.
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    -- Only a hash of the token is stored; the token is shown once, at creation.
    token_hash   text NOT NULL UNIQUE CHECK (length(token_hash) >= 32),
    -- The first characters of the token, so a user can tell tokens apart.
    prefix       text NOT NULL CHECK (length(prefix) BETWEEN 1 AND 16),
    role         user_role NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX idx_api_tokens_user ON api_tokens(user_id);
CREATE TRIGGER api_tokens_touch BEFORE UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

-- ---------------------------------------------------------------------------
-- encoding profiles (the system presets are seeded by a later migration)

CREATE TABLE profiles (
    -- e.g. '720p-h264'. The id becomes a path segment of every output
    -- (jobs/<job_id>/<profile>/...), so it may not contain '/' or '..'.
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name        text NOT NULL CHECK (name <> ''),
    description text NOT NULL DEFAULT '',
    is_system   boolean NOT NULL DEFAULT false,
    -- codec, width/height, bitrate, crf, preset, gop, audio, container,
    -- packaging (hls/dash), ...: validated by the kernel, stored as given.
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER profiles_touch BEFORE UPDATE ON profiles
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();

-- ---------------------------------------------------------------------------
-- workers: one row per worker id, upserted from heartbeats

CREATE TYPE worker_status AS ENUM ('online', 'draining', 'offline');

CREATE TABLE workers (
    id                    text PRIMARY KEY CHECK (id <> ''),
    hostname              text NOT NULL,
    version               text NOT NULL,
    slots                 int NOT NULL DEFAULT 1 CHECK (slots >= 0),
    running               int NOT NULL DEFAULT 0 CHECK (running >= 0),
    -- Routing keys (cpu, nvidia, ...): each names a dispatch subject.
    capabilities          text[] NOT NULL DEFAULT '{}',
    encoders              text[] NOT NULL DEFAULT '{}',
    status                worker_status NOT NULL DEFAULT 'online',
    heartbeat_interval_ms int NOT NULL DEFAULT 5000 CHECK (heartbeat_interval_ms > 0),
    first_seen            timestamptz NOT NULL DEFAULT now(),
    last_seen             timestamptz NOT NULL DEFAULT now(),
    metadata              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object')
);
-- The watchdog's "who stopped heartbeating" scan and the healthy-worker count.
CREATE INDEX idx_workers_last_seen ON workers(last_seen);
