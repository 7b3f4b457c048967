/*
 * Connection pool. A mutex and condition variable guard the slot array; a
 * connection is handed to one thread at a time. A connection found broken
 * (server restart, network) is reset on its next acquire, so the kernel
 * recovers after PostgreSQL comes back without a restart of its own.
 */
#include "we_pg.h"
#include "we_log.h"
#include "we_util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct we_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    char *app;
    int size;
    PGconn **conns; /* NULL slot: not yet connected (or dropped) */
    bool *busy;
};

int we_pg_pool_new(const char *url, const char *app_name, int size, we_pg_pool **out, we_err *err)
{
    if (size < 1)
        return we_err_set(err, WE_EINVAL, "pool size must be at least 1");
    we_pg_pool *p = calloc(1, sizeof *p);
    WE_ASSERT(p != NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->url = we_strdup(url);
    p->app = we_strdup(app_name);
    p->size = size;
    p->conns = calloc((size_t)size, sizeof *p->conns);
    p->busy = calloc((size_t)size, sizeof *p->busy);
    WE_ASSERT(p->conns && p->busy);
    *out = p;
    return 0;
}

void we_pg_pool_free(we_pg_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i])
            PQfinish(p->conns[i]);
    free(p->conns);
    free(p->busy);
    free(p->url);
    free(p->app);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* libpq prints notices (and the server's goodbye on shutdown) to stderr by
 * default; route them through the JSON logger instead. */
static void on_notice(void *arg, const char *message)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", message);
    msg[strcspn(msg, "\n")] = '\0';
    we_debug("PostgreSQL notice", WE_S("detail", msg));
}

PGconn *we_pg_connect(const char *url, const char *app_name, we_err *err)
{
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { url, "3", app_name, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        we_err_set(err, WE_ENOMEM, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        we_err_set(err, WE_EUNAVAIL, "PostgreSQL connection failed: %s", msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

static int take_slot(we_pg_pool *p, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* prefer a slot that already holds a connection */
        int pick = -1;
        for (int i = 0; i < p->size; i++) {
            if (!p->busy[i] && (pick < 0 || (p->conns[i] && !p->conns[pick])))
                pick = i;
        }
        if (pick >= 0) {
            p->busy[pick] = true;
            pthread_mutex_unlock(&p->mu);
            return pick;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
    }
}

static void give_slot(we_pg_pool *p, int i, PGconn *c)
{
    pthread_mutex_lock(&p->mu);
    p->conns[i] = c;
    p->busy[i] = false;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void we_pg_pool_stats(we_pg_pool *p, int *size, int *in_use, int *idle)
{
    int busy = 0, open = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++) {
        busy += p->busy[i];
        open += !p->busy[i] && p->conns[i];
    }
    pthread_mutex_unlock(&p->mu);
    *size = p->size;
    *in_use = busy;
    *idle = open;
}

/* An idle connection has nothing to read; if its socket is readable the
 * server closed it (restart, idle timeout) or sent an error, and
 * PQconsumeInput turns that into CONNECTION_BAD. One poll(2), no round trip. */
static bool conn_alive(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
    if (poll(&pfd, 1, 0) > 0 && (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK))
        return false;
    return true;
}

PGconn *we_pg_acquire(we_pg_pool *p, int timeout_ms, we_err *err)
{
    int i = take_slot(p, timeout_ms);
    if (i < 0) {
        we_err_set(err, WE_ETIMEOUT, "no free database connection within %d ms", timeout_ms);
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    PGconn *c = p->conns[i];
    pthread_mutex_unlock(&p->mu);
    if (c && !conn_alive(c)) {
        PQfinish(c);
        c = NULL;
    }
    if (!c)
        c = we_pg_connect(p->url, p->app, err);
    if (!c) {
        give_slot(p, i, NULL);
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->conns[i] = c;
    pthread_mutex_unlock(&p->mu);
    return c;
}

void we_pg_release(we_pg_pool *p, PGconn *c)
{
    if (!c)
        return;
    int slot = -1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size && slot < 0; i++)
        if (p->conns[i] == c && p->busy[i])
            slot = i;
    pthread_mutex_unlock(&p->mu);
    WE_ASSERT(slot >= 0 && "we_pg_release: connection not from this pool");
    /* a connection left inside a transaction (an error path forgot to roll
     * back) or broken is dropped rather than reused */
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
        PQfinish(c);
        c = NULL;
    }
    give_slot(p, slot, c);
}

static int classify(PGconn *c, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* connection lost, or the server is shutting down / starting up */
    if (PQstatus(c) != CONNECTION_OK || (state && (strncmp(state, "08", 2) == 0 ||
                                                   strncmp(state, "57P", 3) == 0)))
        return WE_EUNAVAIL;
    if (!state)
        return WE_EIO;
    if (strcmp(state, "23505") == 0)
        return WE_EEXIST;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return WE_EINVAL;
    return WE_EIO;
}

int we_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **out,
               we_err *err)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    int rc = classify(c, r);
    PQclear(r);
    return we_err_set(err, rc, "database: %s", msg[0] ? msg : "query failed");
}

int we_pg_schema_version(PGconn *c, int64_t *version, bool *dirty, we_err *err)
{
    PGresult *r = NULL;
    int rc = we_pg_exec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &r, err);
    if (rc != 0)
        return rc;
    bool exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    *version = -1;
    *dirty = false;
    if (!exists)
        return 0;
    rc = we_pg_exec(c, "SELECT version, dirty FROM schema_migrations LIMIT 1", 0, NULL, &r, err);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1) {
        *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *dirty = PQgetvalue(r, 0, 1)[0] == 't';
    }
    PQclear(r);
    return 0;
}
