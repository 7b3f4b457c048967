/*
 * The plugin SDK: the plugin side of docs/plugin-protocol.md.
 *
 * Threads: the main thread reads stdin line by line and dispatches; it
 * answers handshake, health and shutdown itself and queues every other
 * request for a small pool of call threads (def->max_concurrency). Replies
 * and notifications are written to stdout under one mutex, one line each.
 * Active calls are kept in a list (same mutex as the queue) so $/cancel can
 * find them. On stdin EOF or shutdown every call is cancelled, the pool is
 * given 2 s to finish, def->fini runs and the process exits.
 *
 * The SDK is self-contained on purpose: plugins link only it and jansson,
 * and include only the headers of include/webencode/ (plugin.h here;
 * authz.h, base64.h and netaddr.h for helpers several plugins share).
 */
#include "webencode/plugin.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct we_plugin_call {
    json_t *id; /* the request id as sent (number) */
    json_t *params;
    const we_plugin_method *method;
    atomic_bool cancelled;
    int64_t deadline_ms; /* monotonic; 0 = none */
    int err_code;        /* 0 = no error set */
    char err_msg[1024];
    char we_code[32];
    bool retryable;
    struct we_plugin_call *next; /* queue or active list */
};

static struct {
    const we_plugin_def *def;
    void *state;
    pthread_mutex_t out_mu; /* stdout */
    pthread_mutex_t mu;     /* queue, active list, counters */
    pthread_cond_t cv;
    we_plugin_call *queue_head, *queue_tail;
    we_plugin_call *active; /* calls running on pool threads */
    int running;
    bool stopping;
    bool handshaken;
    pthread_t *threads;
    int nthreads;
} S = { .out_mu = PTHREAD_MUTEX_INITIALIZER,
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- output ------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* host gone: stdin EOF will end the process */
        p += w;
        n -= (size_t)w;
    }
}

/* Sends one message (stolen) as one line. A message that cannot be encoded
 * (a NaN in a result, say) becomes an internal error for the same id, so the
 * host never waits for an answer that will not come. */
static void send_msg(json_t *msg)
{
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s && json_object_get(msg, "id")) {
        json_t *e = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                              json_object_get(msg, "id"), "error", "code", WE_RPC_INTERNAL,
                              "message", "the reply could not be encoded as JSON");
        s = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
    }
    json_decref(msg);
    if (!s)
        return;
    pthread_mutex_lock(&S.out_mu);
    write_all(STDOUT_FILENO, s, strlen(s));
    write_all(STDOUT_FILENO, "\n", 1);
    pthread_mutex_unlock(&S.out_mu);
    free(s);
}

static void send_result(json_t *id, json_t *result)
{
    send_msg(json_pack("{s:O, s:o}", "id", id, "result", result ? result : json_object()));
}

/* message as a JSON string; bytes that are not valid UTF-8 become '?'. */
static json_t *text(const char *message)
{
    json_t *j = json_string(message);
    if (j)
        return j;
    char *copy = strdup(message);
    if (!copy)
        return json_string("?");
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static void send_error(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i, s:o}", "code", code, "message", text(message));
    if (data)
        json_object_set_new(err, "data", data);
    send_msg(json_pack("{s:O, s:o}", "id", id ? id : json_null(), "error", err));
}

void we_plugin_log(const char *level, const char *msg, json_t *fields)
{
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    json_t *o = json_is_object(fields) ? fields : json_object();
    if (fields && o != fields)
        json_decref(fields);
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "msg", json_string(msg ? msg : ""));
    if (S.def)
        json_object_set_new(o, "plugin", json_string(S.def->id));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s) {
        size_t len = strlen(s);
        s[len] = '\n'; /* replaces the NUL; written with its length */
        write_all(STDERR_FILENO, s, len + 1);
        free(s);
    }
}

/* ---- call API ----------------------------------------------------------- */

void *we_plugin_state(const we_plugin_call *call)
{
    return S.state;
}

bool we_plugin_cancelled(const we_plugin_call *call)
{
    if (atomic_load(&((we_plugin_call *)call)->cancelled))
        return true;
    return call->deadline_ms && mono_ms() >= call->deadline_ms;
}

int64_t we_plugin_remaining_ms(const we_plugin_call *call)
{
    if (!call->deadline_ms)
        return INT64_MAX;
    int64_t left = call->deadline_ms - mono_ms();
    return left > 0 ? left : 0;
}

void we_plugin_progress(we_plugin_call *call, json_t *progress)
{
    if (!json_is_object(progress)) {
        json_decref(progress);
        return;
    }
    send_msg(json_pack("{s:s, s:{s:O, s:o}}", "method", "$/progress", "params", "id", call->id,
                       "progress", progress));
}

static int vfail(we_plugin_call *call, int code, const char *we_code, bool retryable,
                 const char *fmt, va_list ap)
{
    call->err_code = code;
    vsnprintf(call->err_msg, sizeof call->err_msg, fmt, ap);
    snprintf(call->we_code, sizeof call->we_code, "%s", we_code ? we_code : "");
    call->retryable = retryable;
    return -1;
}

int we_plugin_fail(we_plugin_call *call, const char *we_code, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(call, WE_RPC_FAILED, we_code, retryable, fmt, ap);
    va_end(ap);
    return -1;
}

int we_plugin_fail_params(we_plugin_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(call, WE_RPC_INVALID_PARAMS, NULL, false, fmt, ap);
    va_end(ap);
    return -1;
}

int we_plugin_fail_code(we_plugin_call *call, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(call, code, NULL, code == WE_RPC_DEADLINE, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- call pool ---------------------------------------------------------- */

static void call_free(we_plugin_call *c)
{
    json_decref(c->id);
    json_decref(c->params);
    free(c);
}

static void finish_call(we_plugin_call *c, int rc, json_t *result)
{
    if (rc == 0) {
        send_result(c->id, result);
        return;
    }
    json_decref(result);
    if (c->err_code == WE_RPC_CANCELLED && !atomic_load(&c->cancelled) && c->deadline_ms &&
        mono_ms() >= c->deadline_ms) {
        c->err_code = WE_RPC_DEADLINE; /* stopped by its deadline, not by the host */
        snprintf(c->err_msg, sizeof c->err_msg, "deadline exceeded");
    }
    if (c->err_code == 0) {
        c->err_code = WE_RPC_INTERNAL;
        snprintf(c->err_msg, sizeof c->err_msg, "%s failed without saying why", c->method->name);
    }
    json_t *data = NULL;
    if (c->err_code == WE_RPC_FAILED || c->we_code[0])
        data = json_pack("{s:s, s:b}", "we_code", c->we_code[0] ? c->we_code : "WE-PLG-500",
                         "retryable", c->retryable);
    send_error(c->id, c->err_code, c->err_msg, data);
}

static void unlink_active(we_plugin_call *c)
{
    for (we_plugin_call **p = &S.active; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            return;
        }
    }
}

static void *pool_main(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&S.mu);
        while (!S.queue_head && !S.stopping)
            pthread_cond_wait(&S.cv, &S.mu);
        we_plugin_call *c = S.queue_head;
        if (!c) {
            pthread_mutex_unlock(&S.mu);
            return NULL;
        }
        S.queue_head = c->next;
        if (!S.queue_head)
            S.queue_tail = NULL;
        c->next = S.active;
        S.active = c;
        if (S.stopping)
            atomic_store(&c->cancelled, true);
        S.running++;
        pthread_mutex_unlock(&S.mu);

        json_t *result = NULL;
        int rc = c->method->fn(c, c->params, &result);
        finish_call(c, rc, result);

        pthread_mutex_lock(&S.mu);
        unlink_active(c);
        S.running--;
        pthread_cond_broadcast(&S.cv);
        pthread_mutex_unlock(&S.mu);
        call_free(c);
    }
}

static void enqueue(we_plugin_call *c)
{
    pthread_mutex_lock(&S.mu);
    c->next = NULL;
    if (S.queue_tail)
        S.queue_tail->next = c;
    else
        S.queue_head = c;
    S.queue_tail = c;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
}

static bool same_id(json_t *a, json_t *b)
{
    return json_is_integer(a) && json_is_integer(b) && json_integer_value(a) == json_integer_value(b);
}

static void cancel_id(json_t *id)
{
    pthread_mutex_lock(&S.mu);
    for (we_plugin_call *c = S.active; c; c = c->next)
        if (same_id(c->id, id))
            atomic_store(&c->cancelled, true);
    for (we_plugin_call *c = S.queue_head; c; c = c->next)
        if (same_id(c->id, id))
            atomic_store(&c->cancelled, true);
    pthread_mutex_unlock(&S.mu);
}

/* Cancels everything, lets the pool drain for up to 2 s, joins it. */
static void stop_pool(void)
{
    pthread_mutex_lock(&S.mu);
    S.stopping = true;
    for (we_plugin_call *c = S.active; c; c = c->next)
        atomic_store(&c->cancelled, true);
    for (we_plugin_call *c = S.queue_head; c; c = c->next)
        atomic_store(&c->cancelled, true);
    pthread_cond_broadcast(&S.cv);
    int64_t end = mono_ms() + 2000;
    while ((S.running > 0 || S.queue_head) && mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&S.cv, &S.mu, &ts);
    }
    bool stuck = S.running > 0 || S.queue_head;
    pthread_mutex_unlock(&S.mu);
    if (stuck) {
        /* a method ignores cancellation: do not wait for it forever */
        we_plugin_log("warn", "calls still running at exit; exiting anyway", NULL);
        fflush(NULL);
        _exit(0);
    }
    for (int i = 0; i < S.nthreads; i++)
        pthread_join(S.threads[i], NULL);
    free(S.threads);
    S.threads = NULL;
}

/* ---- standard methods --------------------------------------------------- */

static int api_version(void)
{
    return S.def->api_version ? S.def->api_version : WE_PLUGIN_API_VERSION;
}

static json_t *method_names(void)
{
    json_t *a = json_pack("[s,s,s]", "handshake", "health", "shutdown");
    for (const we_plugin_method *m = S.def->methods; m && m->name; m++)
        json_array_append_new(a, json_string(m->name));
    return a;
}

static bool offers_version(json_t *versions, int v)
{
    size_t i;
    json_t *x;
    json_array_foreach(versions, i, x) if (json_is_integer(x) && json_integer_value(x) == v) return true;
    return false;
}

/* Returns false when the plugin must exit (incompatible host). */
static bool do_handshake(json_t *id, json_t *params)
{
    json_t *versions = json_object_get(params, "api_versions");
    json_t *config = json_object_get(params, "config");
    if (!json_is_array(versions)) {
        send_error(id, WE_RPC_INVALID_PARAMS, "handshake: api_versions must be an array", NULL);
        return true;
    }
    if (!offers_version(versions, api_version())) {
        char *offered = json_dumps(versions, JSON_COMPACT);
        char msg[256];
        snprintf(msg, sizeof msg, "Incompatible API version: plugin speaks %d, host offers %s",
                 api_version(), offered ? offered : "?");
        free(offered);
        send_error(id, WE_RPC_INCOMPATIBLE, msg, NULL);
        we_plugin_log("error", msg, NULL);
        return false;
    }
    char err[512] = "";
    if (S.def->init && S.def->init(config ? config : json_null(), &S.state, err, sizeof err) != 0) {
        send_error(id, WE_RPC_INVALID_PARAMS, err[0] ? err : "configuration rejected", NULL);
        return true;
    }
    json_t *caps = S.def->capabilities_json ? json_loads(S.def->capabilities_json, 0, NULL) : NULL;
    send_result(id, json_pack("{s:s, s:s, s:s, s:i, s:o, s:o}", "id", S.def->id, "type",
                              S.def->type, "version", S.def->version, "api_version",
                              api_version(), "methods", method_names(), "capabilities",
                              caps ? caps : json_object()));
    S.handshaken = true;
    return true;
}

static void do_health(json_t *id)
{
    const char *detail = NULL;
    bool ok = !S.def->health || S.def->health(S.state, &detail);
    json_t *r = json_pack("{s:s}", "status", ok ? "ok" : "degraded");
    if (detail)
        json_object_set_new(r, "detail", json_string(detail));
    send_result(id, r);
}

static const we_plugin_method *find_method(const char *name)
{
    for (const we_plugin_method *m = S.def->methods; m && m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static void start_call(json_t *id, const we_plugin_method *m, json_t *params, json_t *meta)
{
    we_plugin_call *c = calloc(1, sizeof *c);
    if (!c) {
        send_error(id, WE_RPC_INTERNAL, "out of memory", NULL);
        return;
    }
    c->id = json_incref(id);
    c->params = params ? json_incref(params) : json_object();
    c->method = m;
    json_t *d = json_object_get(meta, "deadline_ms");
    if (json_is_integer(d) && json_integer_value(d) > 0)
        c->deadline_ms = mono_ms() + json_integer_value(d);
    enqueue(c);
}

/* ---- dispatch ----------------------------------------------------------- */

enum { GO_ON, STOP_OK, STOP_FAIL };

static int on_request(json_t *id, const char *method, json_t *params, json_t *meta)
{
    if (strcmp(method, "handshake") == 0) {
        if (S.handshaken) {
            send_error(id, WE_RPC_INVALID_REQUEST, "handshake already done", NULL);
            return GO_ON;
        }
        return do_handshake(id, params) ? GO_ON : STOP_FAIL;
    }
    if (!S.handshaken) {
        send_error(id, WE_RPC_INVALID_REQUEST, "the first request must be handshake", NULL);
        return GO_ON;
    }
    if (strcmp(method, "health") == 0) {
        do_health(id);
        return GO_ON;
    }
    if (strcmp(method, "shutdown") == 0) {
        send_result(id, json_object());
        return STOP_OK;
    }
    const we_plugin_method *m = find_method(method);
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "method not found: %.200s", method);
        send_error(id, WE_RPC_METHOD_NOT_FOUND, msg, NULL);
        return GO_ON;
    }
    if (params && !json_is_object(params)) {
        send_error(id, WE_RPC_INVALID_PARAMS, "params must be an object", NULL);
        return GO_ON;
    }
    start_call(id, m, params, meta);
    return GO_ON;
}

/* True when a string anywhere in j holds a NUL (\u0000): C code reading it
 * with json_string_value would see a shorter string than was sent. */
static bool has_nul(json_t *j)
{
    const char *k;
    size_t i;
    json_t *v;
    if (json_is_string(j))
        return strlen(json_string_value(j)) != json_string_length(j);
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) if (has_nul(v)) return true;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (has_nul(v)) return true;
    }
    return false;
}

static int on_message(const char *line, size_t len)
{
    json_error_t je;
    /* NULs are parsed so the request can be answered by id, then refused */
    json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!json_is_object(msg)) {
        json_decref(msg);
        send_error(NULL, WE_RPC_PARSE_ERROR, "parse error: not a JSON object", NULL);
        return GO_ON;
    }
    json_t *id = json_object_get(msg, "id");
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *params = json_object_get(msg, "params");
    int rc = GO_ON;
    if (method && !id) { /* notification */
        if (strcmp(method, "$/cancel") == 0)
            cancel_id(json_object_get(params, "id"));
    } else if (method && json_is_integer(id) && has_nul(msg)) {
        send_error(id, WE_RPC_INVALID_PARAMS, "strings must not contain NUL (\\u0000)", NULL);
    } else if (method && json_is_integer(id)) {
        rc = on_request(id, method, params, json_object_get(msg, "meta"));
    } else if (method) {
        send_error(NULL, WE_RPC_INVALID_REQUEST, "request id must be an integer", NULL);
    } /* responses from the host: none expected, ignored */
    json_decref(msg);
    return rc;
}

/* Reads stdin line by line until EOF, shutdown or a fatal handshake. */
static int read_loop(void)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int rc = GO_ON;
    while (buf && rc == GO_ON) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            size_t n = (size_t)(nl - buf);
            if (n > 0)
                rc = on_message(buf, n);
            memmove(buf, nl + 1, len - n - 1);
            len -= n + 1;
            continue;
        }
        if (len == cap) {
            if (cap >= WE_PLUGIN_MAX_MESSAGE + 1) {
                we_plugin_log("error", "message over 16 MiB from the host; exiting", NULL);
                rc = STOP_FAIL;
                break;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t r = read(STDIN_FILENO, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* EOF: the host is gone */
        len += (size_t)r;
    }
    free(buf);
    return rc;
}

static void describe(void)
{
    fprintf(stderr,
            "%s %s — WebEncode %s plugin (API version %d)\n%s%s"
            "This program is started by the WebEncode kernel or worker (PLUGIN_DIR); it speaks\n"
            "the plugin protocol on stdin/stdout and is not meant to be run by hand.\n",
            S.def->id, S.def->version, S.def->type, api_version(),
            S.def->description ? S.def->description : "", S.def->description ? "\n" : "");
}

int we_plugin_serve(const we_plugin_def *def, int argc, char **argv)
{
    S.def = def;
    const char *magic = getenv(WE_PLUGIN_MAGIC_ENV);
    if (!magic || strcmp(magic, WE_PLUGIN_MAGIC_VALUE) != 0) {
        describe();
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    S.nthreads = def->max_concurrency > 0 ? def->max_concurrency : 4;
    S.threads = calloc((size_t)S.nthreads, sizeof *S.threads);
    for (int i = 0; S.threads && i < S.nthreads; i++)
        pthread_create(&S.threads[i], NULL, pool_main, NULL);
    int rc = read_loop();
    stop_pool();
    if (def->fini && S.handshaken)
        def->fini(S.state);
    return rc == STOP_FAIL ? 1 : 0;
}
