-- Undoes 0001_init.up.sql, in reverse order. No CASCADE and no IF EXISTS:
-- anything unexpected left depending on these objects should stop the
-- rollback rather than vanish with it.
DROP TABLE workers;
DROP TYPE worker_status;

DROP TABLE profiles;

DROP TABLE api_tokens;
DROP TABLE users;
DROP TYPE user_role;

DROP FUNCTION we_touch_updated_at();
