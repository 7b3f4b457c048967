/*
 * Prometheus text format writer, and the lock-free histogram the kernel and
 * the worker observe from many threads. The writers are stateless; a
 * we_prom_hist is updated with relaxed atomics only, so a scrape may see an
 * observation in its bucket before its sum (never a torn value).
 */
#include "we_prom.h"
#include "we_err.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

void we_prom_family(we_buf *b, const char *name, const char *type, const char *help)
{
    we_buf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            we_buf_adds(b, "\\\\");
        else if (*p == '\n')
            we_buf_adds(b, "\\n");
        else
            we_buf_addc(b, *p);
    }
    we_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void label_value(we_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            we_buf_adds(b, "\\\\");
        else if (*v == '"')
            we_buf_adds(b, "\\\"");
        else if (*v == '\n')
            we_buf_adds(b, "\\n");
        else
            we_buf_addc(b, *v);
    }
}

/* The shorter of %.15g and %.17g that reads back as v: 0.011345, not
 * 0.011344999999999999. buf holds 32 bytes. */
static const char *shortest(double v, char *buf)
{
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, 32, "%.17g", v);
    return buf;
}

void we_prom_sample(we_buf *b, const char *name, const char *const *labels, double value)
{
    we_buf_adds(b, name);
    if (labels && labels[0]) {
        we_buf_addc(b, '{');
        for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
            we_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            label_value(b, labels[i + 1]);
            we_buf_addc(b, '"');
        }
        we_buf_addc(b, '}');
    }
    if (isnan(value))
        we_buf_adds(b, " NaN\n");
    else if (isinf(value))
        we_buf_adds(b, value > 0 ? " +Inf\n" : " -Inf\n");
    else if (value == floor(value) && fabs(value) < 1e15)
        we_buf_printf(b, " %.0f\n", value);
    else
        we_buf_printf(b, " %s\n", shortest(value, (char[32]){0}));
}

/* ---- histograms ------------------------------------------------------------------------ */

/* name + suffix into buf, for _bucket/_sum/_count. */
static const char *suffixed(char *buf, size_t n, const char *name, const char *suffix)
{
    snprintf(buf, n, "%s%s", name, suffix);
    return buf;
}

void we_prom_histogram(we_buf *b, const char *name, const char *const *labels, const double *bounds,
                       size_t nb, const uint64_t *cum, uint64_t count, double sum)
{
    const char *l[2 * WE_PROM_MAX_LABELS + 3];
    size_t nl = 0;
    for (; labels && labels[nl] && labels[nl + 1]; nl += 2) {
        WE_ASSERT(nl < 2 * WE_PROM_MAX_LABELS);
        l[nl] = labels[nl];
        l[nl + 1] = labels[nl + 1];
    }
    char le[32], full[160];
    l[nl] = "le";
    l[nl + 1] = le;
    l[nl + 2] = NULL;
    suffixed(full, sizeof full, name, "_bucket");
    for (size_t i = 0; i < nb; i++) {
        snprintf(le, sizeof le, "%g", bounds[i]);
        we_prom_sample(b, full, l, (double)cum[i]);
    }
    snprintf(le, sizeof le, "+Inf");
    we_prom_sample(b, full, l, (double)count);
    l[nl] = NULL;
    we_prom_sample(b, suffixed(full, sizeof full, name, "_sum"), l, sum);
    we_prom_sample(b, suffixed(full, sizeof full, name, "_count"), l, (double)count);
}

void we_prom_hist_observe(we_prom_hist *h, const double *bounds, size_t nb, double v)
{
    WE_ASSERT(nb <= WE_PROM_MAX_BUCKETS);
    if (!(v > 0)) /* negative (a clock step) or NaN */
        v = 0;
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    double micro = v * 1e6;
    atomic_fetch_add_explicit(&h->sum_micro, micro < 1.8e19 ? (uint_fast64_t)(micro + 0.5) : 0,
                              memory_order_relaxed);
}

uint64_t we_prom_hist_count(const we_prom_hist *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= WE_PROM_MAX_BUCKETS; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

void we_prom_hist_write(we_buf *b, const char *name, const char *const *labels,
                        const we_prom_hist *h, const double *bounds, size_t nb)
{
    uint64_t cum[WE_PROM_MAX_BUCKETS], n = 0;
    WE_ASSERT(nb <= WE_PROM_MAX_BUCKETS);
    for (size_t i = 0; i < nb; i++) {
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        cum[i] = n;
    }
    n += atomic_load_explicit(&h->counts[nb], memory_order_relaxed);
    double sum = (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6;
    we_prom_histogram(b, name, labels, bounds, nb, cum, n, sum);
}

/* ---- process series ----------------------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void gauge(we_buf *b, const char *name, const char *help, double v)
{
    we_prom_family(b, name, "gauge", help);
    we_prom_sample(b, name, NULL, v);
}

/* From /proc: boot time (btime) plus the process's start in clock ticks. */
static double proc_start_s(void)
{
    char line[256], stat[1024];
    double btime = 0, ticks = 0;
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &btime) == 1)
            break;
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = '\0';
    const char *p = strrchr(stat, ')'); /* the command name may hold spaces */
    /* after ") ": state is field 3, starttime field 22 */
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                     "%*d %*d %lf",
                     &ticks) != 1)
        return 0;
    return btime + ticks / (double)sysconf(_SC_CLK_TCK);
}

void we_prom_process(we_buf *b, double start_s)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            pages = rss = 0;
        fclose(f);
    }
    double page = (double)sysconf(_SC_PAGESIZE);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    we_prom_family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    we_prom_sample(b, "process_cpu_seconds_total", NULL, cpu);
    gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", (double)rss * page);
    gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double)pages * page);
    int fds = count_fds();
    if (fds >= 0)
        gauge(b, "process_open_fds", "Number of open file descriptors.", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        gauge(b, "process_max_fds", "Maximum number of open file descriptors.",
              (double)rl.rlim_cur);
    gauge(b, "process_start_time_seconds", "Start time of the process since the Unix epoch.",
          start_s > 0 ? start_s : proc_start_s());
}

/* ---- plugin health ------------------------------------------------------------------------- */

static const char *const plugin_states[] = {"starting", "healthy",    "degraded",
                                            "failed",   "restarting", "disabled"};

void we_prom_plugins(we_buf *b, json_t *plugins)
{
    size_t i;
    json_t *p;
    we_prom_family(b, "webencode_plugin_up", "gauge",
                   "1 while the plugin answers its health checks (healthy or degraded).");
    json_array_foreach(plugins, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *st = json_string_value(json_object_get(p, "state"));
        const char *l[] = {"plugin", id ? id : "", "type", type ? type : "", NULL};
        bool up = st && (strcmp(st, "healthy") == 0 || strcmp(st, "degraded") == 0);
        we_prom_sample(b, "webencode_plugin_up", l, up);
    }
    we_prom_family(b, "webencode_plugin_state", "gauge",
                   "1 for the plugin's current state (docs/plugin-protocol.md section 7).");
    json_array_foreach(plugins, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *st = json_string_value(json_object_get(p, "state"));
        for (size_t k = 0; k < sizeof plugin_states / sizeof *plugin_states; k++) {
            const char *l[] = {"plugin", id ? id : "", "state", plugin_states[k], NULL};
            we_prom_sample(b, "webencode_plugin_state", l, st && strcmp(st, plugin_states[k]) == 0);
        }
    }
    we_prom_family(b, "webencode_plugin_restarts_total", "counter",
                   "Restarts of the plugin's process since this host started.");
    json_array_foreach(plugins, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        const char *l[] = {"plugin", id ? id : "", NULL};
        we_prom_sample(b, "webencode_plugin_restarts_total", l,
                       (double)json_integer_value(json_object_get(p, "restarts_total")));
    }
}
