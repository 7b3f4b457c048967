/*
 * The heartbeat message a worker publishes on workers.heartbeat.<id> and
 * sends in reply to a control ping. The kernel is written against exactly
 * these fields:
 *   {"id","hostname","version","slots","running","capabilities","encoders",
 *    "draining","state","interval_ms","ts","cpu_count","load1",
 *    "mem_total_mb","ffmpeg_version"} and, when the worker hosts plugins,
 *   "plugins" (kept by the kernel in the worker's metadata).
 */
#ifndef WK_HEARTBEAT_H
#define WK_HEARTBEAT_H

#include "strlist.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct wk_hb {
    const char *id;
    const char *hostname;
    const char *version;
    int slots;
    int running;
    const wk_strlist *capabilities;
    const wk_strlist *encoders;
    bool draining;
    const char *state; /* "online" or "offline" */
    int interval_ms;
    int64_t ts_ms; /* Unix epoch ms, sent as RFC 3339 */
    int cpu_count;
    double load1;
    int64_t mem_total_mb;
    const char *ffmpeg_version; /* NULL is sent as null */
    json_t *plugins;            /* borrowed; [{id,type,version,state}] or NULL (omitted) */
} wk_hb;

/* The compact JSON text of hb; the caller free()s it. NULL when a string is
 * not valid UTF-8 or memory runs out. Pure: safe from any thread. */
char *wk_heartbeat_json(const wk_hb *hb);

/* CPUs this process may run on (affinity), at least 1. */
int wk_cpu_count(void);
/* Total memory in MiB, 0 when unknown. */
int64_t wk_mem_total_mb(void);
/* The 1-minute load average from <proc_root>/loadavg ("/proc" when NULL),
 * 0 when unreadable. */
double wk_load1(const char *proc_root);

#endif
