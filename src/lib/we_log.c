/*
 * JSON-lines logger. The service name and level are set once at start-up
 * (before any thread exists) and only read afterwards; every call builds its
 * line in a local buffer and writes it with a single write(2), which keeps
 * lines whole under concurrency without a lock.
 */
#include "we_log.h"
#include "we_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *g_service = "webencode";
static we_log_level g_level = WE_LOG_INFO;
static atomic_int g_fd = -1;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

void we_log_init(const char *service, we_log_level level)
{
    g_service = service;
    g_level = level;
}

int we_log_level_parse(const char *s, we_log_level *out)
{
    static const struct { const char *name; we_log_level level; } table[] = {
        { "debug", WE_LOG_DEBUG }, { "info", WE_LOG_INFO },   { "warn", WE_LOG_WARN },
        { "warning", WE_LOG_WARN }, { "error", WE_LOG_ERROR }, { "fatal", WE_LOG_FATAL },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcasecmp(s, table[i].name) == 0) {
            *out = table[i].level;
            return 0;
        }
    }
    return -1;
}

bool we_log_enabled(we_log_level level)
{
    return level >= g_level;
}

void we_log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

static _Atomic(we_log_sink_fn) g_sink;

void we_log_set_sink(we_log_sink_fn fn)
{
    atomic_store(&g_sink, fn);
}

static void add_time(we_buf *b)
{
    struct timespec ts;
    struct tm tm;
    char tbuf[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    we_buf_printf(b, "{\"time\":\"%s.%03ldZ\"", tbuf, ts.tv_nsec / 1000000);
}

static void add_field(we_buf *b, const we_kv *kv)
{
    we_buf_addc(b, ',');
    we_buf_add_json_str(b, kv->key);
    we_buf_addc(b, ':');
    switch (kv->type) {
    case WE_KV_STR:
        if (kv->s)
            we_buf_add_json_str(b, kv->s);
        else
            we_buf_adds(b, "null");
        break;
    case WE_KV_INT:
        we_buf_printf(b, "%lld", kv->i);
        break;
    case WE_KV_DBL:
        if (isfinite(kv->d))
            we_buf_printf(b, "%.6g", kv->d);
        else
            we_buf_adds(b, "null");
        break;
    case WE_KV_BOOL:
        we_buf_adds(b, kv->i ? "true" : "false");
        break;
    case WE_KV_RAW:
        we_buf_adds(b, kv->s ? kv->s : "null");
        break;
    case WE_KV_END:
        break;
    }
}

void we_log_at(we_log_level level, const char *msg, ...)
{
    if (level < g_level)
        return;
    we_buf b;
    we_buf_init(&b);
    add_time(&b);
    we_buf_printf(&b, ",\"level\":\"%s\",\"service\":", level_names[level]);
    we_buf_add_json_str(&b, g_service);
    we_buf_adds(&b, ",\"msg\":");
    we_buf_add_json_str(&b, msg);

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        we_kv kv = va_arg(ap, we_kv);
        if (kv.type == WE_KV_END)
            break;
        add_field(&b, &kv);
    }
    va_end(ap);
    we_buf_adds(&b, "}\n");

    int fd = atomic_load(&g_fd);
    if (fd < 0)
        fd = STDERR_FILENO;
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(fd, b.data + off, b.len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    we_log_sink_fn sink = level >= WE_LOG_ERROR ? atomic_load(&g_sink) : NULL;
    if (sink)
        sink(level, b.data, b.len - 1);
    we_buf_fini(&b);
}
