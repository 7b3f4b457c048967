/*
 * GET /metrics: Prometheus text format. The runbook's gauges and counters
 * are read from PostgreSQL at scrape time, so every kernel behind a load
 * balancer reports the same values; process and HTTP counters are this
 * kernel's own. When the database is down the scrape still answers, with
 * webencode_database_up 0 and without the database-derived series.
 */
#include "api.h"
#include "metrics.h"
#include "we_prom.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const metrics_sql =
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
    "    ON w.st = s GROUP BY s) y)";

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
        const char *labels[] = { label, k, NULL };
        we_prom_sample(b, name, labels, (double)json_integer_value(v));
    }
    json_decref(o);
}

static void database_series(we_buf *b, PGresult *r)
{
    gauge(b, "webencode_workers_healthy", "Workers whose heartbeat is current.",
          atof(PQgetvalue(r, 0, 0)));
    we_prom_family(b, "webencode_workers", "gauge", "Known workers by derived status.");
    labelled_from_json(b, "webencode_workers", "status", PQgetvalue(r, 0, 5));
    gauge(b, "webencode_tasks_processing", "Tasks running on workers now.",
          atof(PQgetvalue(r, 0, 1)));
    gauge(b, "webencode_streams_live", "Live streams receiving input now.",
          atof(PQgetvalue(r, 0, 2)));
    we_prom_family(b, "webencode_errors_total", "counter", "Errors recorded (error_events).");
    we_prom_sample(b, "webencode_errors_total", NULL, atof(PQgetvalue(r, 0, 3)));
    we_prom_family(b, "webencode_jobs_total", "gauge", "Jobs by status.");
    labelled_from_json(b, "webencode_jobs_total", "status", PQgetvalue(r, 0, 4));
}

static void process_series(we_buf *b, kn_ctx *kn)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)rss * (double)sysconf(_SC_PAGESIZE));
    we_prom_family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    we_prom_sample(b, "process_cpu_seconds_total", NULL, cpu);
    gauge(b, "process_start_time_seconds", "Start time of the process since the Unix epoch.",
          (double)kn->started_ms / 1000.0);
    we_prom_family(b, "webencode_kernel_info", "gauge", "Kernel build information.");
    const char *labels[] = { "version", WE_VERSION, NULL };
    we_prom_sample(b, "webencode_kernel_info", labels, 1);
}

static void http_series(we_buf *b)
{
    static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
    we_prom_family(b, "webencode_http_requests_total", "counter",
                   "HTTP requests answered by this kernel, by status class.");
    for (int i = 0; i < 5; i++) {
        const char *labels[] = { "code", classes[i], NULL };
        we_prom_sample(b, "webencode_http_requests_total", labels,
                       (double)kn_http_requests(i + 1));
    }
}

enum MHD_Result kn_api_metrics(kn_req *r)
{
    we_buf b;
    we_buf_init(&b);
    we_err err;
    PGresult *res = NULL;
    PGconn *c = we_pg_acquire(r->kn->db, 2000, &err);
    int rc = c ? we_pg_exec(c, metrics_sql, 0, NULL, &res, &err) : WE_EIO;
    if (c)
        we_pg_release(r->kn->db, c);
    if (rc == 0) {
        database_series(&b, res);
        PQclear(res);
    }
    gauge(&b, "webencode_database_up", "1 when the last query to PostgreSQL succeeded.",
          rc == 0);
    we_nats *n = kn_nats_get(r->kn);
    gauge(&b, "webencode_nats_connected", "1 while connected to NATS.",
          n && we_nats_is_connected(n));
    http_series(&b);
    process_series(&b, r->kn);
    enum MHD_Result ret =
        kn_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    we_buf_fini(&b);
    return ret;
}

void kn_metrics_observe_request(const kn_req *r, double seconds)
{
    /* request duration histogram: issue 6 */
    (void)r;
    (void)seconds;
}
