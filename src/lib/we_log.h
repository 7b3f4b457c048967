/*
 * Structured logging: one JSON object per line on stderr with `time`, `level`,
 * `service`, `msg`, `error` when there is one, and context fields.
 *
 *   we_info("worker registered", WE_S("worker_id", id), WE_I("slots", 2));
 *   we_error("NATS Connection Failed", WE_ERR(msg), WE_S("url", url));
 *
 * Thread-safe: each line is built in a private buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#ifndef WE_LOG_H
#define WE_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum we_log_level {
    WE_LOG_DEBUG = 0,
    WE_LOG_INFO,
    WE_LOG_WARN,
    WE_LOG_ERROR,
    WE_LOG_FATAL,
} we_log_level;

typedef enum we_kv_type { WE_KV_END = 0, WE_KV_STR, WE_KV_INT, WE_KV_DBL, WE_KV_BOOL, WE_KV_RAW } we_kv_type;

typedef struct we_kv {
    const char *key;
    we_kv_type type;
    const char *s;
    long long i;
    double d;
} we_kv;

#define WE_S(k, v) ((we_kv){ (k), WE_KV_STR, (v), 0, 0 })
#define WE_I(k, v) ((we_kv){ (k), WE_KV_INT, NULL, (long long)(v), 0 })
#define WE_D(k, v) ((we_kv){ (k), WE_KV_DBL, NULL, 0, (double)(v) })
#define WE_B(k, v) ((we_kv){ (k), WE_KV_BOOL, NULL, (v) ? 1 : 0, 0 })
/* v must already be valid JSON text (an object or array built elsewhere). */
#define WE_RAW(k, v) ((we_kv){ (k), WE_KV_RAW, (v), 0, 0 })
#define WE_ERR(v) WE_S("error", (v))
#define WE_KV_LAST ((we_kv){ NULL, WE_KV_END, NULL, 0, 0 })

/* Sets the service name and minimum level. Call once at start, before threads. */
void we_log_init(const char *service, we_log_level level);
/* Parses "debug|info|warn|warning|error" (case-insensitive); -1 when unknown. */
int we_log_level_parse(const char *s, we_log_level *out);
bool we_log_enabled(we_log_level level);
/* Redirects output to fd (tests); -1 restores stderr. */
void we_log_set_fd(int fd);

/* A hook for records of level error and fatal: called after the line was
 * written, on the logging thread, with the finished JSON line (no newline;
 * borrowed). It must be quick and must not log at error level itself.
 * NULL removes it. The kernel's error tracker is the only user. */
typedef void (*we_log_sink_fn)(we_log_level level, const char *line, size_t len);
void we_log_set_sink(we_log_sink_fn fn);

/* The fields end with WE_KV_LAST; use the macros below, which add it. */
void we_log_at(we_log_level level, const char *msg, ...);

#define we_debug(...) we_log_at(WE_LOG_DEBUG, __VA_ARGS__, WE_KV_LAST)
#define we_info(...) we_log_at(WE_LOG_INFO, __VA_ARGS__, WE_KV_LAST)
#define we_warn(...) we_log_at(WE_LOG_WARN, __VA_ARGS__, WE_KV_LAST)
#define we_error(...) we_log_at(WE_LOG_ERROR, __VA_ARGS__, WE_KV_LAST)
#define we_fatal(...) we_log_at(WE_LOG_FATAL, __VA_ARGS__, WE_KV_LAST)

#endif
