/*
 * The PostgreSQL connection of auth-basic.
 *
 * One connection, guarded by a mutex (libpq allows a PGconn on one thread
 * at a time; auth statements are short, and the slow part — scrypt — runs
 * outside the lock). Every statement goes through PQexecParams: parameters
 * travel separately from the SQL text, which is always a constant.
 *
 * Connection loss: a statement that fails because the connection broke
 * (a PostgreSQL restart, a network cut) resets the connection and is tried
 * once more; if the reset fails the call fails with WE-AUTH-503 (retryable).
 * A monitor thread pings the database when no statement has succeeded for
 * AB_PING_MS, so `health` reports "degraded" while the database is down and
 * the connection comes back without waiting for a call.
 *
 * The connection string is a secret: it is never logged and never part of a
 * message; connection errors are logged with libpq's message, which names
 * host and port but not the password.
 */
#include "ab.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AB_PING_MS 2000

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void quiet_notices(void *arg, const char *message)
{
    /* server NOTICEs would go to stderr as non-JSON lines; drop them */
}

/* First line of libpq's error message, for logs. */
static json_t *pq_error_fields(PGconn *conn)
{
    const char *m = conn ? PQerrorMessage(conn) : "out of memory";
    return json_pack("{s:s#}", "error", m, (int)strcspn(m, "\n"));
}

/* Records the connection state; logs transitions only. */
static void set_up(ab_db *db, bool up)
{
    if (up)
        atomic_store(&db->last_ok_ms, mono_ms());
    if (atomic_exchange(&db->up, up) == up)
        return;
    if (up)
        we_plugin_log("info", "database connection established", NULL);
    else
        we_plugin_log("warn", "database unreachable; will reconnect", pq_error_fields(db->conn));
}

static PGconn *connect_db(const ab_db *db)
{
    const char *keys[] = { "dbname", "connect_timeout", "fallback_application_name", NULL };
    const char *vals[] = { db->url, "3", "webencode-auth-basic", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeProcessor(c, quiet_notices, NULL);
    return c;
}

/* With db->mu held: a live connection, connecting or resetting as needed. */
static bool ensure_conn(ab_db *db)
{
    if (!db->conn)
        db->conn = connect_db(db);
    else if (PQstatus(db->conn) != CONNECTION_OK)
        PQreset(db->conn);
    bool ok = db->conn && PQstatus(db->conn) == CONNECTION_OK;
    set_up(db, ok);
    return ok;
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return r && (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK);
}

/* With db->mu held: runs the statement, once more after a reset when the
 * connection broke under it. NULL when the database is unreachable. */
static PGresult *run_locked(ab_db *db, const char *sql, int n, const char *const *params)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_conn(db))
            return NULL;
        PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (result_ok(r) || PQstatus(db->conn) == CONNECTION_OK) {
            set_up(db, true);
            return r;
        }
        PQclear(r);
        set_up(db, false);
    }
    return NULL;
}

static int sql_error(we_plugin_call *call, PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    we_plugin_log("error", "database statement failed",
                  json_pack("{s:s, s:s}", "sqlstate", state ? state : "?", "error",
                            msg ? msg : "?"));
    int rc = call ? we_plugin_fail(call, "WE-AUTH-500", false, "database error (SQLSTATE %s)",
                                   state ? state : "?")
                  : -1;
    PQclear(r);
    return rc;
}

int ab_db_exec(ab_db *db, we_plugin_call *call, const char *sql, int n, const char *const *params,
               PGresult **res)
{
    pthread_mutex_lock(&db->mu);
    PGresult *r = run_locked(db, sql, n, params);
    pthread_mutex_unlock(&db->mu);
    if (!r && !call)
        return -1;
    if (!r)
        return we_plugin_fail(call, "WE-AUTH-503", true, "authentication database unreachable");
    if (result_ok(r)) {
        *res = r;
        return 0;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0) { /* unique_violation */
        PQclear(r);
        return AB_DB_CONFLICT;
    }
    return sql_error(call, r);
}

static void ping(ab_db *db)
{
    pthread_mutex_lock(&db->mu);
    PGresult *r = run_locked(db, "SELECT 1", 0, NULL);
    PQclear(r);
    pthread_mutex_unlock(&db->mu);
}

static void *monitor_main(void *arg)
{
    ab_db *db = arg;
    pthread_mutex_lock(&db->stop_mu);
    while (!db->stopping) {
        pthread_mutex_unlock(&db->stop_mu);
        if (!atomic_load(&db->up) || mono_ms() - atomic_load(&db->last_ok_ms) >= AB_PING_MS)
            ping(db);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&db->stop_mu);
        if (!db->stopping)
            pthread_cond_timedwait(&db->stop_cv, &db->stop_mu, &until);
    }
    pthread_mutex_unlock(&db->stop_mu);
    return NULL;
}

int ab_db_init(ab_db *db, const char *url, char *err, size_t err_len)
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
    pthread_mutex_init(&db->stop_mu, NULL);
    pthread_cond_init(&db->stop_cv, NULL);
    atomic_init(&db->up, true); /* so that a first failure is logged */
    pthread_mutex_lock(&db->mu);
    ensure_conn(db); /* a database that is down does not fail init: health says so */
    pthread_mutex_unlock(&db->mu);
    db->monitor_running = pthread_create(&db->monitor, NULL, monitor_main, db) == 0;
    return 0;
}

/* A no-op on a db whose init failed (url NULL). */
void ab_db_fini(ab_db *db)
{
    if (!db->url)
        return;
    if (db->monitor_running) {
        pthread_mutex_lock(&db->stop_mu);
        db->stopping = true;
        pthread_cond_signal(&db->stop_cv);
        pthread_mutex_unlock(&db->stop_mu);
        pthread_join(db->monitor, NULL);
    }
    PQfinish(db->conn);
    db->conn = NULL;
    OPENSSL_cleanse(db->url, strlen(db->url));
    free(db->url);
    db->url = NULL;
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->stop_mu);
    pthread_cond_destroy(&db->stop_cv);
}
