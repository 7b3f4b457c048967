/*
 * GET /metrics: Prometheus text format (docs/monitoring.md lists every
 * series).
 *
 * Two kinds of series. The runbook's gauges and counters, the job and task
 * duration histograms and the queue depth are read from PostgreSQL at
 * scrape time in one query, so every kernel behind a load balancer reports
 * the same values. The HTTP counters and latency histogram, plugin health,
 * the connection pool, NATS and process series are this kernel's own. When
 * the database is down the scrape still answers, with webencode_database_up
 * 0 and without the database-derived series.
 *
 * Request latency: one we_prom_hist per (route, status class) — per
 * (method, status class) for requests that matched no route — so label
 * cardinality is bounded by the route table, never by the URLs clients
 * send. Cells are allocated once (pthread_once) and updated with relaxed
 * atomics from MHD's pool threads.
 */
#include "metrics.h"
#include "sse.h"
#include "api.h"
#include "we_log.h"
#include "we_prom.h"
#include "we_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- histograms from PostgreSQL ----------------------------------------------------- */

/* Job duration: submission (created_at) to the terminal status. */
static const double job_bounds[] = {1,   5,    10,   30,   60,    120,  300,
                                    600, 1800, 3600, 7200, 21600, 86400};
/* Task duration: the last attempt, started_at to finished_at. */
static const double task_bounds[] = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                     30,  60,   120, 300, 600, 1800, 3600};
#define NJOB (sizeof job_bounds / sizeof *job_bounds)
#define NTASK (sizeof task_bounds / sizeof *task_bounds)

/* A column: {"<label>": [cum_1, …, cum_n, count, sum], …} as text, one key per
 * label value in keys_sql (even without rows), over rows_sql's (k, d). */
static void hist_column(we_buf *b, const char *keys_sql, const char *rows_sql, const double *bounds,
                        size_t nb)
{
    we_buf_adds(b, " (SELECT json_object_agg(s, a)::text FROM (SELECT k.s, json_build_array(");
    for (size_t i = 0; i < nb; i++)
        we_buf_printf(b, "count(x.d) FILTER (WHERE x.d <= %g), ", bounds[i]);
    we_buf_printf(b,
                  "count(x.d), coalesce(sum(x.d), 0)) AS a FROM (%s) k(s) LEFT JOIN (%s) "
                  "x(k, d) ON x.k = k.s GROUP BY k.s) h)",
                  keys_sql, rows_sql);
}

static char *g_sql; /* built once: the bounds are part of the query text */

static void build_sql(void)
{
    we_buf b;
    we_buf_init(&b);
    we_buf_adds(
        &b,
        "SELECT"
        " (SELECT count(*) FROM workers WHERE status <> 'offline' AND last_seen >= now()"
        "    - 3 * heartbeat_interval_ms * interval '1 millisecond'),"
        " (SELECT count(*) FROM tasks WHERE status = 'running'),"
        " (SELECT count(*) FROM streams WHERE is_live),"
        " (SELECT coalesce(sum(count), 0) FROM error_events),"
        " (SELECT json_object_agg(s, n)::text FROM (SELECT s::text, count(j.id) AS n"
        "    FROM unnest(enum_range(NULL::job_status)) s LEFT JOIN jobs j ON j.status = s"
        "    GROUP BY s) x),"
        " (SELECT json_object_agg(s, n)::text FROM (SELECT s, count(w.id) AS n FROM"
        "    unnest(ARRAY['healthy','unhealthy','draining','offline']) s LEFT JOIN (SELECT id,"
        "    CASE WHEN status = 'offline' THEN 'offline' WHEN last_seen < now()"
        "    - 3 * heartbeat_interval_ms * interval '1 millisecond' THEN 'unhealthy'"
        "    WHEN status = 'draining' THEN 'draining' ELSE 'healthy' END AS st FROM workers) w"
        "    ON w.st = s GROUP BY s) y),"
        /* queue depth: every capability a worker advertises or a task waits for */
        " (SELECT json_object_agg(c, n)::text FROM (SELECT c, count(t.id) AS n FROM"
        "    (SELECT 'cpu' UNION SELECT unnest(capabilities) FROM workers"
        "     UNION SELECT capability FROM tasks WHERE status IN ('pending', 'dispatched')) k(c)"
        "    LEFT JOIN tasks t ON t.capability = k.c AND t.status IN ('pending', 'dispatched')"
        "    GROUP BY c) q),");
    hist_column(&b, "VALUES ('completed'), ('failed'), ('cancelled')",
                "SELECT status::text, extract(epoch FROM finished_at - created_at) FROM jobs"
                " WHERE finished_at IS NOT NULL",
                job_bounds, NJOB);
    we_buf_addc(&b, ',');
    hist_column(&b, "SELECT unnest(enum_range(NULL::task_type))::text",
                "SELECT type::text, extract(epoch FROM finished_at - started_at) FROM tasks"
                " WHERE finished_at IS NOT NULL AND started_at IS NOT NULL",
                task_bounds, NTASK);
    g_sql = we_buf_steal(&b);
}

enum { C_HEALTHY, C_RUNNING, C_LIVE, C_ERRORS, C_JOBS, C_WORKERS, C_QUEUE, C_JOBDUR, C_TASKDUR };

/* ---- request latency ------------------------------------------------------------------- */

static const double http_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NHTTP (sizeof http_bounds / sizeof *http_bounds)
static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "other"};
#define NMETHODS (sizeof methods / sizeof *methods)
#define NCLASSES 5 /* 1xx … 5xx */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static size_t g_nroutes;
static we_prom_hist *g_cells; /* [(g_nroutes + NMETHODS) * NCLASSES] */

static void init_once(void)
{
    while (kn_routes[g_nroutes].pattern)
        g_nroutes++;
    g_cells = calloc((g_nroutes + NMETHODS) * NCLASSES, sizeof *g_cells);
    WE_ASSERT(g_cells != NULL);
    build_sql();
}

static size_t method_index(const char *m)
{
    for (size_t i = 0; i + 1 < NMETHODS; i++)
        if (strcmp(methods[i], m) == 0)
            return i;
    return NMETHODS - 1;
}

void kn_metrics_observe_request(const kn_req *r, double seconds)
{
    pthread_once(&g_once, init_once);
    if (r->status < 100 || r->status > 599)
        return; /* nothing was sent (the client went away first) */
    if (r->route && strcmp(r->route->pattern, "/v1/events") == 0)
        return; /* a stream's lifetime is not a latency (webencode_sse_clients counts them) */
    size_t row = g_nroutes + method_index(r->method);
    if (r->route && r->route >= kn_routes && r->route < kn_routes + g_nroutes)
        row = (size_t)(r->route - kn_routes);
    we_prom_hist_observe(&g_cells[row * NCLASSES + (size_t)(r->status / 100 - 1)], http_bounds,
                         NHTTP, seconds);
}

static void http_series(we_buf *b)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    we_prom_family(b, "webencode_http_requests_total", "counter",
                   "HTTP requests answered by this kernel, by status class.");
    for (int i = 0; i < NCLASSES; i++) {
        const char *labels[] = {"code", classes[i], NULL};
        we_prom_sample(b, "webencode_http_requests_total", labels, (double)kn_http_requests(i + 1));
    }
    we_prom_family(b, "webencode_http_request_duration_seconds", "histogram",
                   "Time from a request's arrival to its response, by method, route pattern "
                   "(\"unmatched\" for 404/405) and status class; this kernel only.");
    for (size_t row = 0; row < g_nroutes + NMETHODS; row++) {
        bool matched = row < g_nroutes;
        for (size_t c = 0; c < NCLASSES; c++) {
            const we_prom_hist *h = &g_cells[row * NCLASSES + c];
            if (we_prom_hist_count(h) == 0)
                continue;
            const char *labels[] = {
                "method", matched ? kn_routes[row].method : methods[row - g_nroutes],
                "route",  matched ? kn_routes[row].pattern : "unmatched",
                "code",   classes[c],
                NULL,
            };
            we_prom_hist_write(b, "webencode_http_request_duration_seconds", labels, h, http_bounds,
                               NHTTP);
        }
    }
}

/* ---- series from the database ------------------------------------------------------------ */

static void gauge(we_buf *b, const char *name, const char *help, double v)
{
    we_prom_family(b, name, "gauge", help);
    we_prom_sample(b, name, NULL, v);
}

static void labelled_from_json(we_buf *b, const char *name, const char *label, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        const char *labels[] = {label, k, NULL};
        we_prom_sample(b, name, labels, (double)json_integer_value(v));
    }
    json_decref(o);
}

/* A hist_column's JSON as one histogram per key. */
static void hist_from_json(we_buf *b, const char *name, const char *label, const char *json,
                           const double *bounds, size_t nb)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *k;
    json_t *a;
    json_object_foreach(o, k, a)
    {
        uint64_t cum[WE_PROM_MAX_BUCKETS];
        if (json_array_size(a) != nb + 2)
            continue;
        for (size_t i = 0; i < nb; i++)
            cum[i] = (uint64_t)json_integer_value(json_array_get(a, i));
        const char *labels[] = {label, k, NULL};
        we_prom_histogram(b, name, labels, bounds, nb, cum,
                          (uint64_t)json_integer_value(json_array_get(a, nb)),
                          json_number_value(json_array_get(a, nb + 1)));
    }
    json_decref(o);
}

static void database_series(we_buf *b, PGresult *r)
{
    gauge(b, "webencode_workers_healthy", "Workers whose heartbeat is current.",
          atof(PQgetvalue(r, 0, C_HEALTHY)));
    we_prom_family(b, "webencode_workers", "gauge", "Known workers by derived status.");
    labelled_from_json(b, "webencode_workers", "status", PQgetvalue(r, 0, C_WORKERS));
    gauge(b, "webencode_tasks_processing", "Tasks running on workers now.",
          atof(PQgetvalue(r, 0, C_RUNNING)));
    we_prom_family(b, "webencode_tasks_queued", "gauge",
                   "Tasks waiting for a worker (pending or dispatched), by capability.");
    labelled_from_json(b, "webencode_tasks_queued", "capability", PQgetvalue(r, 0, C_QUEUE));
    gauge(b, "webencode_streams_live", "Live streams receiving input now.",
          atof(PQgetvalue(r, 0, C_LIVE)));
    we_prom_family(b, "webencode_errors_total", "counter", "Errors recorded (error_events).");
    we_prom_sample(b, "webencode_errors_total", NULL, atof(PQgetvalue(r, 0, C_ERRORS)));
    /* a count by status that goes up and down: a gauge, but the runbook's
     * name ends in _total, which promtool allows only on counters and
     * untyped series */
    we_prom_family(b, "webencode_jobs_total", "untyped", "Jobs by status (a current count).");
    labelled_from_json(b, "webencode_jobs_total", "status", PQgetvalue(r, 0, C_JOBS));
    we_prom_family(b, "webencode_job_duration_seconds", "histogram",
                   "Finished jobs (every job in the database) by terminal status: submission "
                   "to completion.");
    hist_from_json(b, "webencode_job_duration_seconds", "status", PQgetvalue(r, 0, C_JOBDUR),
                   job_bounds, NJOB);
    we_prom_family(b, "webencode_task_duration_seconds", "histogram",
                   "Finished tasks (every task in the database) by type: the last attempt's "
                   "start to its end.");
    hist_from_json(b, "webencode_task_duration_seconds", "type", PQgetvalue(r, 0, C_TASKDUR),
                   task_bounds, NTASK);
}

/* ---- this kernel's own ------------------------------------------------------------------ */

static void pool_series(we_buf *b, we_pg_pool *db)
{
    int size, in_use, idle;
    we_pg_pool_stats(db, &size, &in_use, &idle);
    gauge(b, "webencode_db_pool_size", "Connections this kernel's pool may open (DB_POOL_SIZE).",
          size);
    we_prom_family(b, "webencode_db_pool_connections", "gauge",
                   "This kernel's database connections: in_use (handed out) and idle (open, "
                   "waiting in the pool).");
    we_prom_sample(b, "webencode_db_pool_connections", (const char *[]){"state", "in_use", NULL},
                   in_use);
    we_prom_sample(b, "webencode_db_pool_connections", (const char *[]){"state", "idle", NULL},
                   idle);
}

static void nats_series(we_buf *b, kn_ctx *kn)
{
    we_nats *n = kn_nats_get(kn);
    gauge(b, "webencode_nats_connected", "1 while connected to NATS.",
          n && we_nats_is_connected(n));
    gauge(b, "webencode_sse_clients", "Event streams (GET /v1/events) open on this kernel.",
          (double)kn_sse_clients());
    uint64_t reconnects = 0;
    natsStatistics *st = NULL;
    if (n && n->nc && natsStatistics_Create(&st) == NATS_OK &&
        natsConnection_GetStats(n->nc, st) == NATS_OK)
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &reconnects);
    natsStatistics_Destroy(st);
    we_prom_family(b, "webencode_nats_reconnects_total", "counter",
                   "Times this kernel reconnected to NATS.");
    we_prom_sample(b, "webencode_nats_reconnects_total", NULL, (double)reconnects);
}

static void kernel_series(we_buf *b, kn_ctx *kn)
{
    json_t *plugins = kn->plugins ? we_host_list(kn->plugins) : NULL;
    we_prom_plugins(b, plugins);
    json_decref(plugins);
    pool_series(b, kn->db);
    nats_series(b, kn);
    http_series(b);
    we_prom_process(b, (double)kn->started_ms / 1000.0);
    we_prom_family(b, "webencode_kernel_info", "gauge", "Kernel build information.");
    const char *labels[] = {"version", WE_VERSION, NULL};
    we_prom_sample(b, "webencode_kernel_info", labels, 1);
}

enum MHD_Result kn_api_metrics(kn_req *r)
{
    pthread_once(&g_once, init_once);
    we_buf b;
    we_buf_init(&b);
    we_err err;
    PGresult *res = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, g_sql, 0, NULL, &res, &err) : WE_EIO;
    if (c)
        we_pg_release(r->kn->db, c);
    if (rc == 0) {
        database_series(&b, res);
        PQclear(res);
    } else {
        we_warn("metrics without the database series", WE_ERR(err.msg));
    }
    gauge(&b, "webencode_database_up", "1 when the last query to PostgreSQL succeeded.", rc == 0);
    kernel_series(&b, r->kn);
    enum MHD_Result ret =
        kn_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    we_buf_fini(&b);
    return ret;
}
