/*
 * Heartbeat JSON and the host facts it carries. wk_heartbeat_json is a pure
 * function of its input (jansson objects live only inside the call), so the
 * main thread's timer and the NATS thread's ping reply can both build one
 * without sharing anything.
 */
#include "heartbeat.h"
#include "we_util.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *wk_heartbeat_json(const wk_hb *hb)
{
    char ts[40];
    char *text = NULL;
    json_t *caps = wk_strlist_to_json(hb->capabilities);
    json_t *encs = wk_strlist_to_json(hb->encoders);
    json_t *o = NULL;
    if (!caps || !encs)
        goto done;
    we_time_rfc3339(ts, sizeof ts, hb->ts_ms);
    /* "O" takes its own reference, so caps/encs are released below either way */
    o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:O, s:O, s:b, s:s, s:i, s:s, s:i, s:f, s:I, s:s?}",
                  "id", hb->id, "hostname", hb->hostname, "version", hb->version, "slots",
                  hb->slots, "running", hb->running, "capabilities", caps, "encoders", encs,
                  "draining", hb->draining, "state", hb->state, "interval_ms", hb->interval_ms,
                  "ts", ts, "cpu_count", hb->cpu_count, "load1", hb->load1, "mem_total_mb",
                  (json_int_t)hb->mem_total_mb, "ffmpeg_version", hb->ffmpeg_version);
    if (o && hb->plugins)
        json_object_set(o, "plugins", hb->plugins);
    if (o)
        text = json_dumps(o, JSON_COMPACT);
done:
    json_decref(o);
    json_decref(caps);
    json_decref(encs);
    return text;
}

int wk_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int64_t wk_mem_total_mb(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return 0;
    return (int64_t)pages * size / (1024 * 1024);
}

double wk_load1(const char *proc_root)
{
    char path[512];
    double load = 0;
    snprintf(path, sizeof path, "%s/loadavg", proc_root ? proc_root : "/proc");
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lf", &load) != 1 || !isfinite(load) || load < 0)
        load = 0;
    fclose(f);
    return load;
}
