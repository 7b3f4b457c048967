/*
 * The worker's /metrics (docs/monitoring.md lists every series): what it
 * runs now (slots, running tasks, FFmpeg processes, the encoders' speed per
 * slot), what it ran (tasks by result), whether it drains, what its
 * heartbeat says about the machine (CPUs, load, memory, capabilities), its
 * plugins' health, NATS and the process itself.
 *
 * The endpoint is off by default (WORKER_METRICS_PORT=0): several workers
 * often share a machine and a fixed default port would collide. When it is
 * on, libmicrohttpd serves it from one internal thread, bound to
 * WORKER_METRICS_ADDR (127.0.0.1 unless set). The worker does not depend on
 * it: a port that cannot be bound is logged by the caller and the worker
 * runs on without metrics.
 *
 * State: process-wide. Task counters are atomics; the per-slot speeds sit
 * under a mutex (the encoder reports a few times a second per task); the
 * NATS connection is published once through an atomic pointer, because the
 * main thread fills it while the endpoint may already be serving.
 */
#include "exporter.h"
#include "heartbeat.h"
#include "we_log.h"
#include "we_prom.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SLOTS 64 /* WORKER_SLOTS' upper bound */

static struct {
    atomic_uint_fast64_t tasks[WK_RESULT_COUNT];
    pthread_mutex_t mu;
    double speed[MAX_SLOTS];   /* (mu) */
    bool has_speed[MAX_SLOTS]; /* (mu) a task in the slot reported one */
    _Atomic(const we_nats *) nats;
    struct MHD_Daemon *d; /* main thread */
    wk_worker *w;         /* set before the daemon starts */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const result_names[WK_RESULT_COUNT] = {"completed", "failed", "cancelled"};

/* ---- observations ---------------------------------------------------------------------- */

void wk_metrics_progress(int slot, double speed)
{
    if (slot < 0 || slot >= MAX_SLOTS || !(speed >= 0))
        return;
    pthread_mutex_lock(&g.mu);
    g.speed[slot] = speed;
    g.has_speed[slot] = true;
    pthread_mutex_unlock(&g.mu);
}

void wk_metrics_task_end(int slot, wk_result result)
{
    WE_ASSERT(result >= 0 && result < WK_RESULT_COUNT);
    atomic_fetch_add(&g.tasks[result], 1);
    if (slot < 0 || slot >= MAX_SLOTS)
        return;
    pthread_mutex_lock(&g.mu);
    g.has_speed[slot] = false;
    pthread_mutex_unlock(&g.mu);
}

void wk_metrics_set_nats(const we_nats *n)
{
    atomic_store(&g.nats, n);
}

/* ---- FFmpeg processes ------------------------------------------------------------------- */

typedef struct pinfo {
    int pid, ppid;
    bool match;
} pinfo;

static int by_pid(const void *a, const void *b)
{
    const pinfo *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* pid, ppid and whether the command name is name, from <root>/<pid>/stat. */
static bool read_stat(const char *root, const char *pid, const char *name, pinfo *out)
{
    char path[300], buf[512];
    snprintf(path, sizeof path, "%s/%s/stat", root, pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false; /* gone meanwhile */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open || sscanf(close + 1, " %*c %d", &out->ppid) != 1)
        return false;
    *close = '\0';
    out->pid = atoi(pid);
    out->match = strncmp(open + 1, name, 15) == 0 && strlen(open + 1) == strnlen(name, 15);
    return true;
}

static bool descends_from(const pinfo *all, size_t n, int pid, int ancestor)
{
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        pinfo key = {.pid = pid};
        const pinfo *p = bsearch(&key, all, n, sizeof *all, by_pid);
        if (!p)
            return false;
        if (p->ppid == ancestor)
            return true;
        pid = p->ppid;
    }
    return false;
}

int wk_metrics_count_descendants(const char *proc_root, int pid, const char *name)
{
    const char *root = proc_root ? proc_root : "/proc";
    DIR *d = opendir(root);
    if (!d)
        return 0;
    pinfo *all = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            all = realloc(all, cap * sizeof *all);
            WE_ASSERT(all != NULL);
        }
        n += read_stat(root, e->d_name, name, &all[n]);
    }
    closedir(d);
    qsort(all, n, sizeof *all, by_pid);
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += all[i].match && descends_from(all, n, all[i].pid, pid);
    free(all);
    return count;
}

/* FFmpeg runs below the encoder plugin, a child of this process. */
static int ffmpeg_processes(const wk_worker *w)
{
    const char *slash = strrchr(w->cfg.ffmpeg, '/');
    const char *name = slash ? slash + 1 : w->cfg.ffmpeg;
    int n = wk_metrics_count_descendants(NULL, (int)getpid(), name);
    if (strcmp(name, "ffmpeg") != 0)
        n += wk_metrics_count_descendants(NULL, (int)getpid(), "ffmpeg");
    return n;
}

/* ---- the exposition --------------------------------------------------------------------- */

static void gauge(we_buf *b, const char *name, const char *help, double v)
{
    we_prom_family(b, name, "gauge", help);
    we_prom_sample(b, name, NULL, v);
}

static void task_series(we_buf *b, wk_worker *w)
{
    gauge(b, "webencode_worker_slots", "Tasks this worker runs at once (WORKER_SLOTS).",
          w->cfg.slots);
    gauge(b, "webencode_worker_tasks_running", "Tasks running on this worker now.",
          atomic_load(&w->running));
    we_prom_family(b, "webencode_worker_tasks_total", "counter",
                   "Tasks this worker finished, by result (cancelled: the job was cancelled or "
                   "the worker stopped and handed the task back).");
    for (int i = 0; i < WK_RESULT_COUNT; i++) {
        const char *l[] = {"result", result_names[i], NULL};
        we_prom_sample(b, "webencode_worker_tasks_total", l, (double)atomic_load(&g.tasks[i]));
    }
    we_prom_family(b, "webencode_worker_encode_speed", "gauge",
                   "The encoder's latest speed (x realtime) for the task in each busy slot.");
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < MAX_SLOTS && i < w->cfg.slots; i++) {
        if (!g.has_speed[i])
            continue;
        char slot[16];
        snprintf(slot, sizeof slot, "%d", i);
        const char *l[] = {"slot", slot, NULL};
        we_prom_sample(b, "webencode_worker_encode_speed", l, g.speed[i]);
    }
    pthread_mutex_unlock(&g.mu);
    gauge(b, "webencode_worker_ffmpeg_processes", "FFmpeg processes running below this worker.",
          ffmpeg_processes(w));
    gauge(b, "webencode_worker_draining", "1 while the worker takes no new tasks (drain or stop).",
          atomic_load(&w->draining));
}

/* What the heartbeat tells the kernel about the machine. */
static void host_series(we_buf *b, wk_worker *w)
{
    we_prom_family(b, "webencode_worker_info", "gauge", "Worker build and identity.");
    const char *info[] = {
        "worker_id", w->cfg.id,        "version",
        WE_VERSION,  "ffmpeg_version", w->caps.ffmpeg_version ? w->caps.ffmpeg_version : "",
        NULL};
    we_prom_sample(b, "webencode_worker_info", info, 1);
    we_prom_family(b, "webencode_worker_capability", "gauge",
                   "Capabilities this worker advertises (1 each).");
    for (size_t i = 0; i < w->caps.capabilities.n; i++) {
        const char *l[] = {"capability", w->caps.capabilities.v[i], NULL};
        we_prom_sample(b, "webencode_worker_capability", l, 1);
    }
    gauge(b, "webencode_worker_cpus", "CPUs usable by this worker.", w->cpu_count);
    gauge(b, "webencode_worker_load1", "The machine's 1-minute load average.", wk_load1(NULL));
    gauge(b, "webencode_worker_memory_total_bytes", "The machine's memory.",
          (double)w->mem_total_mb * 1024 * 1024);
    const we_nats *n = atomic_load(&g.nats);
    gauge(b, "webencode_worker_nats_connected", "1 while connected to NATS.",
          n && we_nats_is_connected(n));
}

void wk_metrics_render(wk_worker *w, we_buf *b)
{
    task_series(b, w);
    host_series(b, w);
    json_t *plugins = w->plugins ? we_host_list(w->plugins) : NULL;
    we_prom_plugins(b, plugins);
    json_decref(plugins);
    we_prom_process(b, 0);
}

/* ---- the endpoint ------------------------------------------------------------------------ */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             we_buf *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int first;
    if (!*state) { /* answer on the second call: keeps the connection alive */
        *state = &first;
        return MHD_YES;
    }
    *upload_size = 0;
    we_buf b;
    we_buf_init(&b);
    unsigned status = 200;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (strcmp(url, "/metrics") != 0) {
        status = 404;
        type = "text/plain; charset=utf-8";
        we_buf_adds(&b, "not found: the worker serves only GET /metrics\n");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = 405;
        type = "text/plain; charset=utf-8";
        we_buf_adds(&b, "method not allowed: GET /metrics\n");
    } else {
        wk_metrics_render(g.w, &b);
    }
    enum MHD_Result ret = reply(c, status, type, &b);
    we_buf_fini(&b);
    return ret;
}

int wk_metrics_start(wk_worker *w, we_err *err)
{
    if (w->cfg.metrics_port == 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)w->cfg.metrics_port)};
    if (inet_pton(AF_INET, w->cfg.metrics_addr, &sa.sin_addr) != 1)
        return we_err_set(err, WE_EINVAL, "WORKER_METRICS_ADDR=%s is not an IPv4 address",
                          w->cfg.metrics_addr);
    g.w = w;
    g.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                           (uint16_t)w->cfg.metrics_port, NULL, NULL, on_request, NULL,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
                           (unsigned)64, MHD_OPTION_END);
    if (!g.d)
        return we_err_set(err, WE_EIO, "cannot listen on %s:%d (port in use?)", w->cfg.metrics_addr,
                          w->cfg.metrics_port);
    we_info("metrics endpoint listening", WE_S("addr", w->cfg.metrics_addr),
            WE_I("port", w->cfg.metrics_port));
    return 0;
}

void wk_metrics_stop(void)
{
    if (g.d)
        MHD_stop_daemon(g.d);
    g.d = NULL;
}
