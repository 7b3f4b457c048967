/*
 * Prometheus text exposition format (version 0.0.4), written by hand because
 * Debian has no C client library. Builds into a we_buf.
 *
 *   we_prom_family(b, "webencode_workers_healthy", "gauge", "Healthy workers.");
 *   we_prom_sample(b, "webencode_workers_healthy", NULL, 3);
 *   we_prom_sample(b, "webencode_jobs_total", (const char *[]){ "status", "queued", NULL }, 0);
 */
#ifndef WE_PROM_H
#define WE_PROM_H

#include "we_buf.h"

/* # HELP and # TYPE lines; help text is escaped. */
void we_prom_family(we_buf *b, const char *name, const char *type, const char *help);
/* One sample; labels is NULL or a NULL-terminated list of name, value pairs
 * (values escaped). Non-finite values are written as +Inf/-Inf/NaN. */
void we_prom_sample(we_buf *b, const char *name, const char *const *labels, double value);

#endif
