/*
 * PostgreSQL access: a fixed-size connection pool that reconnects by itself
 * after the server restarts, and small query helpers over libpq.
 */
#ifndef WE_PG_H
#define WE_PG_H

#include "we_err.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct we_pg_pool we_pg_pool;

/* Creates a pool of `size` lazily opened connections to url. The pool keeps
 * its own copy of url and app_name. */
int we_pg_pool_new(const char *url, const char *app_name, int size, we_pg_pool **out, we_err *err);
void we_pg_pool_free(we_pg_pool *p);

/* A connected connection for the calling thread, waiting up to timeout_ms
 * for a free one; (re)connects when needed. NULL with err set on failure.
 * Give it back with we_pg_release, also after errors. */
PGconn *we_pg_acquire(we_pg_pool *p, int timeout_ms, we_err *err);
void we_pg_release(we_pg_pool *p, PGconn *c);

/* Occupancy for metrics: the pool's size, connections handed out now, and
 * open connections waiting in the pool. Thread-safe. */
void we_pg_pool_stats(we_pg_pool *p, int *size, int *in_use, int *idle);

/* Opens one connection (connect_timeout 3 s). */
PGconn *we_pg_connect(const char *url, const char *app_name, we_err *err);

/* Runs sql with text parameters; *out gets the result (PQclear it) when the
 * command succeeded. On failure returns WE_EUNAVAIL when the connection or
 * server is gone, WE_EEXIST for a unique violation, WE_EINVAL for other
 * integrity/data errors, else WE_EIO, with the server's message in err.
 * out may be NULL. */
int we_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **out,
               we_err *err);

/* The golang-migrate bookkeeping row: version (-1 when none) and dirty. */
int we_pg_schema_version(PGconn *c, int64_t *version, bool *dirty, we_err *err);

#endif
