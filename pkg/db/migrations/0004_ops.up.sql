-- 0004 ops: plugin configuration, webhooks and their deliveries, the
-- queryable audit log, grouped error events and user notifications.

-- ---------------------------------------------------------------------------
-- plugins

CREATE TABLE plugin_configs (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    -- The plugin pillars of the protocol (DESIGN §7).
    plugin_type text NOT NULL
                CHECK (plugin_type IN ('auth', 'storage', 'encoder', 'live', 'publisher')),
    config      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- Kept apart from config so the API can return config and never secrets.
    secrets     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    enabled     boolean NOT NULL DEFAULT true,
    priority    int NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plugin_configs_touch BEFORE UPDATE ON plugin_configs
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();
-- "The highest-priority healthy storage plugin" and friends.
CREATE INDEX idx_plugin_configs_type ON plugin_configs(plugin_type, priority DESC);

-- ---------------------------------------------------------------------------
-- webhooks

CREATE TYPE webhook_delivery_status AS ENUM ('pending', 'delivering', 'succeeded', 'failed');

CREATE TABLE webhooks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a deleted user's endpoints must stop receiving events (they
    -- would leak data to someone who no longer has access). NULL: created by
    -- the system or the bootstrap admin.
    user_id          uuid REFERENCES users(id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (url ~* '^https?://'),
    -- Used in clear to sign deliveries (HMAC); write-only in the API.
    secret           text NOT NULL CHECK (secret <> ''),
    events           text[] NOT NULL
                     CHECK (cardinality(events) > 0 AND array_position(events, NULL) IS NULL),
    active           boolean NOT NULL DEFAULT true,
    failure_count    int NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    last_delivery_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER webhooks_touch BEFORE UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();
CREATE INDEX idx_webhooks_user ON webhooks(user_id);
-- "Active webhooks subscribed to event E": WHERE active AND events @> ARRAY[E].
CREATE INDEX idx_webhooks_events ON webhooks USING gin (events) WHERE active;

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: deliveries are the webhook's history and queue.
    webhook_id       uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event            text NOT NULL CHECK (event <> ''),
    payload          jsonb NOT NULL,
    status           webhook_delivery_status NOT NULL DEFAULT 'pending',
    attempts         int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status_code int CHECK (last_status_code BETWEEN 100 AND 599),
    last_error       text,
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- An event is delivered to a webhook once, however often it is queued.
    UNIQUE (webhook_id, event_id),
    CHECK ((status = 'succeeded') = (delivered_at IS NOT NULL))
);
CREATE TRIGGER webhook_deliveries_touch BEFORE UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION we_touch_updated_at();
-- Retry queue: deliveries still to send, by due time.
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
    WHERE status IN ('pending', 'delivering');
-- A webhook's delivery history, newest first.
CREATE INDEX idx_webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at DESC);

-- ---------------------------------------------------------------------------
-- audit log: the queryable copy of the audit.> JetStream stream

CREATE TABLE audit_log (
    -- The event's own id from the stream, so copying a redelivered message
    -- is INSERT ... ON CONFLICT (id) DO NOTHING.
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- No FK: the audit trail outlives the users it names.
    user_id       uuid,
    actor         text NOT NULL, -- username, token name, 'system', 'bootstrap'
    action        text NOT NULL CHECK (action <> ''), -- 'job.create', 'worker.lost', ...
    resource_type text,
    resource_id   text,
    result        text NOT NULL DEFAULT 'success' CHECK (result IN ('success', 'failure', 'denied')),
    client_ip     inet,
    user_agent    text,
    request_id    text,
    details       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_log_created ON audit_log(created_at DESC);
CREATE INDEX idx_audit_log_user_created ON audit_log(user_id, created_at);
CREATE INDEX idx_audit_log_action_created ON audit_log(action, created_at);
CREATE INDEX idx_audit_log_resource ON audit_log(resource_type, resource_id, created_at);

-- ---------------------------------------------------------------------------
-- error events: one row per open problem, counted, not one per occurrence

CREATE TYPE error_severity AS ENUM ('warning', 'error', 'critical', 'fatal');

CREATE TABLE error_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source      text NOT NULL CHECK (source <> ''), -- kernel, worker, plugin:<id>, frontend
    severity    error_severity NOT NULL DEFAULT 'error',
    message     text NOT NULL,
    context     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    request_id  text,
    -- No FK: recording an error must never fail, and the record should
    -- survive the job's purge.
    job_id      uuid,
    -- Groups occurrences of the same problem (e.g. hash of source + code).
    fingerprint text NOT NULL CHECK (fingerprint <> ''),
    count       int NOT NULL DEFAULT 1 CHECK (count >= 1),
    resolved    boolean NOT NULL DEFAULT false,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    CHECK (last_seen >= first_seen)
);
-- One open row per fingerprint: a new occurrence is
-- INSERT ... ON CONFLICT (fingerprint) WHERE NOT resolved DO UPDATE SET count = count + 1.
CREATE UNIQUE INDEX uq_error_events_open ON error_events(fingerprint) WHERE NOT resolved;
CREATE INDEX idx_error_events_last_seen ON error_events(last_seen DESC);
CREATE INDEX idx_error_events_job ON error_events(job_id) WHERE job_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- notifications

CREATE TABLE notifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a notification is addressed to one user and is theirs alone.
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title      text NOT NULL CHECK (title <> ''),
    message    text NOT NULL DEFAULT '',
    link       text,
    level      text NOT NULL DEFAULT 'info' CHECK (level IN ('info', 'success', 'warning', 'error')),
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX idx_notifications_user_created ON notifications(user_id, created_at DESC);
CREATE INDEX idx_notifications_unread ON notifications(user_id) WHERE read_at IS NULL;
CREATE INDEX idx_notifications_expires ON notifications(expires_at) WHERE expires_at IS NOT NULL;
