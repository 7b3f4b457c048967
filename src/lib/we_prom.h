/*
 * Prometheus text exposition format (version 0.0.4), written by hand because
 * Debian has no C client library. Builds into a we_buf.
 *
 *   we_prom_family(b, "webencode_workers_healthy", "gauge", "Healthy workers.");
 *   we_prom_sample(b, "webencode_workers_healthy", NULL, 3);
 *   we_prom_sample(b, "webencode_jobs_total", (const char *[]){ "status", "queued", NULL }, 0);
 *
 * Histograms observed in process (request latency) use we_prom_hist: one
 * per label combination, updated with relaxed atomics from any thread and
 * written by we_prom_hist_write. Histograms computed elsewhere (from
 * PostgreSQL) go straight to we_prom_histogram.
 */
#ifndef WE_PROM_H
#define WE_PROM_H

#include "we_buf.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* # HELP and # TYPE lines; help text is escaped. */
void we_prom_family(we_buf *b, const char *name, const char *type, const char *help);
/* One sample; labels is NULL or a NULL-terminated list of name, value pairs
 * (values escaped). Non-finite values are written as +Inf/-Inf/NaN. */
void we_prom_sample(we_buf *b, const char *name, const char *const *labels, double value);

/* The samples of one histogram (after its family): name_bucket{labels,le}
 * for each of the nb upper bounds with the cumulative counts cum[0..nb-1],
 * le="+Inf" with count, then name_sum and name_count. labels as above, at
 * most WE_PROM_MAX_LABELS pairs. */
#define WE_PROM_MAX_LABELS 6
void we_prom_histogram(we_buf *b, const char *name, const char *const *labels, const double *bounds,
                       size_t nb, const uint64_t *cum, uint64_t count, double sum);

/* A histogram observed concurrently. Caller's storage, zero-initialised
 * (static or calloc); no init or fini. Bucket counts are per bucket, not
 * cumulative; the sum is kept in microseconds, so observations are seconds
 * (or any unit) with six decimals. bounds are ascending, at most
 * WE_PROM_MAX_BUCKETS. */
#define WE_PROM_MAX_BUCKETS 16
typedef struct we_prom_hist {
    atomic_uint_fast64_t counts[WE_PROM_MAX_BUCKETS + 1]; /* last: above every bound */
    atomic_uint_fast64_t sum_micro;
} we_prom_hist;

/* Any thread; lock-free. Negative or NaN values count as 0. */
void we_prom_hist_observe(we_prom_hist *h, const double *bounds, size_t nb, double v);
/* Total observations so far. */
uint64_t we_prom_hist_count(const we_prom_hist *h);
/* Writes h's samples as we_prom_histogram does. The count is the sum of the
 * buckets read, so _count always equals the +Inf bucket. */
void we_prom_hist_write(we_buf *b, const char *name, const char *const *labels,
                        const we_prom_hist *h, const double *bounds, size_t nb);

/* Process series of the calling process, as the Go and Python clients name
 * them: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds (start_s: seconds since the epoch; 0: read
 * from /proc). */
void we_prom_process(we_buf *b, double start_s);

/* Plugin health from a we_host_list array (borrowed; NULL writes the
 * families without samples): webencode_plugin_up{plugin,type} (1 while
 * healthy or degraded), webencode_plugin_state{plugin,state} (1 for the
 * current of the six states, 0 for the others) and
 * webencode_plugin_restarts_total{plugin}. */
void we_prom_plugins(we_buf *b, json_t *plugins);

#endif
