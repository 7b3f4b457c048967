/*
 * The optional users row of an OIDC identity, in the kernel's PostgreSQL
 * database (table users of migration 0001), so that jobs, streams and
 * notifications made with an OIDC token belong to a real user.
 *
 * The row's username is "oidc:<username claim>" (auth-basic's usernames
 * admit no ':', so the two never collide), password_hash stays NULL, and
 * role follows the token: the identity provider is the source of truth, so
 * each login writes the role it says. One statement upserts and reads the
 * row, writing only when the role changed or last_login_at is more than a
 * minute old, so a busy API client does not turn every request into a write.
 * A row an admin disabled refuses the login; a row with a password (made
 * some other way) is never taken over.
 *
 * One connection behind a mutex (libpq allows a PGconn on one thread at a
 * time; the statement is short). A statement that fails because the
 * connection broke resets it and runs once more; a database that stays
 * away fails the call with WE-AUTH-503 (retryable) and turns `health`
 * degraded. The connection string is a secret: never logged, never in a
 * message.
 */
#include "ao.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_USER[] =
    "WITH up AS ("
    " INSERT INTO users (username, role, last_login_at) VALUES ($1, $2::user_role, now())"
    " ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, last_login_at = now()"
    " WHERE users.password_hash IS NULL AND (users.role IS DISTINCT FROM EXCLUDED.role"
    "  OR users.last_login_at IS NULL OR users.last_login_at < now() - interval '1 minute')"
    " RETURNING id, disabled, false AS local)"
    " SELECT id, disabled, local FROM up"
    " UNION ALL SELECT id, disabled, password_hash IS NOT NULL FROM users"
    " WHERE username = $1 AND NOT EXISTS (SELECT 1 FROM up)";
enum { U_ID, U_DISABLED, U_LOCAL };

static void quiet_notices(void *arg, const char *message)
{
    /* server NOTICEs would go to stderr as non-JSON lines; drop them */
}

static void set_up(ao_db *db, bool up)
{
    if (atomic_exchange(&db->up, up) == up)
        return;
    if (up)
        we_plugin_log("info", "database connection established", NULL);
    else /* libpq's message names host and port, never the password */
        we_plugin_log("warn", "database unreachable",
                      json_pack("{s:s#}", "error", PQerrorMessage(db->conn),
                                (int)strcspn(PQerrorMessage(db->conn), "\n")));
}

/* With db->mu held: a live connection, connecting or resetting as needed. */
static bool ensure_conn(ao_db *db)
{
    const char *keys[] = {"dbname", "connect_timeout", "fallback_application_name", NULL};
    const char *vals[] = {db->url, "3", "webencode-auth-oidc", NULL};
    if (!db->conn) {
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (db->conn)
            PQsetNoticeProcessor(db->conn, quiet_notices, NULL);
    } else if (PQstatus(db->conn) != CONNECTION_OK) {
        PQreset(db->conn);
    }
    bool ok = db->conn && PQstatus(db->conn) == CONNECTION_OK;
    if (db->conn)
        set_up(db, ok);
    return ok;
}

/* With db->mu held: the statement's result (PQclear it), once more after a
 * reset when the connection broke under it; NULL when unreachable. */
static PGresult *run_locked(ao_db *db, const char *const *params)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_conn(db))
            return NULL;
        PGresult *r = PQexecParams(db->conn, SQL_USER, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK || PQstatus(db->conn) == CONNECTION_OK)
            return r;
        PQclear(r);
        set_up(db, false);
    }
    return NULL;
}

static int sql_error(we_plugin_call *call, PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    we_plugin_log(
        "error", "database statement failed",
        json_pack("{s:s, s:s}", "sqlstate", state ? state : "?", "error", msg ? msg : "?"));
    int rc = we_plugin_fail(call, "WE-AUTH-500", false, "database error (SQLSTATE %s)",
                            state ? state : "?");
    PQclear(r);
    return rc;
}

enum { ROW_AGAIN = 2 };

/* The row from a finished statement: 0, AO_DB_REFUSED, or ROW_AGAIN when
 * the row was not visible (a concurrent first login): run again. */
static int row(const PGresult *r, char user_id[37])
{
    if (PQntuples(r) != 1)
        return ROW_AGAIN;
    if (PQgetvalue(r, 0, U_DISABLED)[0] == 't' || PQgetvalue(r, 0, U_LOCAL)[0] == 't') {
        we_plugin_log("info", "authentication refused",
                      json_pack("{s:s}", "reason",
                                PQgetvalue(r, 0, U_LOCAL)[0] == 't'
                                    ? "the username belongs to a password user"
                                    : "disabled user"));
        return AO_DB_REFUSED;
    }
    snprintf(user_id, 37, "%s", PQgetvalue(r, 0, U_ID));
    return 0;
}

int ao_db_user(ao_db *db, we_plugin_call *call, const ao_identity *id, char user_id[37])
{
    const char *params[] = {id->username, we_role_name(id->role)};
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&db->mu);
        PGresult *r = run_locked(db, params);
        pthread_mutex_unlock(&db->mu);
        if (!r)
            return we_plugin_fail(call, "WE-AUTH-503", true, "user database unreachable");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return sql_error(call, r);
        int rc = row(r, user_id);
        PQclear(r);
        if (rc != ROW_AGAIN)
            return rc;
    }
    return we_plugin_fail(call, "WE-AUTH-500", false, "user row not found after upsert");
}

int ao_db_init(ao_db *db, const char *url, char *err, size_t err_len)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    PQfreemem(perr); /* it may quote the string: not repeated anywhere */
    if (!opts) {
        snprintf(err, err_len, "database_url: not a valid PostgreSQL connection string");
        return -1;
    }
    PQconninfoFree(opts);
    if (!(db->url = strdup(url))) {
        snprintf(err, err_len, "database_url: out of memory");
        return -1;
    }
    pthread_mutex_init(&db->mu, NULL);
    atomic_init(&db->up, true); /* so that a first failure is logged */
    pthread_mutex_lock(&db->mu);
    ensure_conn(db); /* a database that is down does not fail init: health says so */
    pthread_mutex_unlock(&db->mu);
    return 0;
}

/* A no-op when no database is configured (url NULL). */
void ao_db_fini(ao_db *db)
{
    if (!db->url)
        return;
    PQfinish(db->conn);
    OPENSSL_cleanse(db->url, strlen(db->url));
    free(db->url);
    pthread_mutex_destroy(&db->mu);
    memset(db, 0, sizeof *db);
}
