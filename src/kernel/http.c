/*
 * HTTP server. libmicrohttpd runs an epoll thread pool (HTTP_THREADS); each
 * request is handled entirely on the pool thread that owns its connection.
 * Per-request state (kn_req) is created on the first access-handler call,
 * the body is accumulated (bounded by MAX_BODY_BYTES) over the following
 * calls, and the response is queued on the final call — never the first, or
 * MHD closes keep-alive connections (reference/deps.md §3).
 *
 * Shutdown: kn_http_stop quiesces the listening socket, waits for the
 * in-flight counter (requests started but not completed) to reach zero, then
 * stops the daemon.
 */
#include "http.h"
#include "audit.h"
#include "auth.h"
#include "metrics.h"
#include "sse.h"
#include "tls.h"
#include "we_log.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct kn_http {
    struct MHD_Daemon *d;
    kn_ctx *kn;
    atomic_int inflight;
};

static atomic_uint_fast64_t g_requests[6]; /* by status / 100 */

uint64_t kn_http_requests(int klass)
{
    return klass >= 1 && klass <= 5 ? atomic_load(&g_requests[klass]) : 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- routing ------------------------------------------------------------ */

/* Matches one pattern against path; captures go to params (heap copies). */
static bool pattern_match(const char *pat, const char *path, char **params, int *nparams)
{
    int n = 0;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *pe = strchr(pat, '}');
            size_t len = strcspn(path, "/");
            if (!pe || len == 0 || n >= KN_MAX_PARAMS)
                goto nomatch;
            params[n++] = strndup(path, len);
            pat = pe + 1;
            path += len;
        } else if (*pat++ != *path++) {
            goto nomatch;
        }
    }
    if (*pat || *path)
        goto nomatch;
    *nparams = n;
    return true;
nomatch:
    for (int i = 0; i < n; i++)
        free(params[i]);
    return false;
}

const kn_route *kn_route_match(const kn_route *table, const char *method, const char *path,
                               char **params, int *nparams, bool *method_mismatch, char *allow,
                               size_t allow_len)
{
    *method_mismatch = false;
    if (allow_len)
        allow[0] = '\0';
    for (const kn_route *rt = table; rt->pattern; rt++) {
        char *tmp[KN_MAX_PARAMS];
        int n = 0;
        if (!pattern_match(rt->pattern, path, tmp, &n))
            continue;
        if (strcmp(rt->method, method) == 0) {
            for (int i = 0; i < n; i++)
                params[i] = tmp[i];
            *nparams = n;
            return rt;
        }
        for (int i = 0; i < n; i++)
            free(tmp[i]);
        *method_mismatch = true;
        if (allow_len && !strstr(allow, rt->method)) {
            if (allow[0])
                strncat(allow, ", ", allow_len - strlen(allow) - 1);
            strncat(allow, rt->method, allow_len - strlen(allow) - 1);
        }
    }
    return NULL;
}

/* ---- responses ---------------------------------------------------------- */

json_t *kn_error_body(const char *code, const char *message, json_t *details,
                      const char *request_id)
{
    char ts[40];
    we_time_rfc3339(ts, sizeof ts, we_now_ms());
    json_t *msg = json_string(message);
    if (!msg) { /* not UTF-8: it quotes a client's bytes (decoded path, parser's "near '...'") */
        char *ascii = we_strdup(message);
        for (char *p = ascii; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        msg = json_string(ascii);
        free(ascii);
    }
    return json_pack("{s:{s:s, s:o, s:o, s:s, s:s}}", "error", "code", code, "message", msg,
                     "details", details ? details : json_null(), "request_id", request_id,
                     "timestamp", ts);
}

enum MHD_Result kn_reply_response(kn_req *r, unsigned status, struct MHD_Response *resp,
                                  const char *content_type)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"webencode\"");
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "X-Request-Id, Retry-After, X-Next-Cursor, Content-Disposition");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    }
    r->status = (int)status;
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result kn_reply_text(kn_req *r, unsigned status, const char *content_type,
                              const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return resp ? kn_reply_response(r, status, resp, content_type) : MHD_NO;
}

enum MHD_Result kn_reply_json(kn_req *r, unsigned status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(body);
    if (!s)
        return MHD_NO;
    size_t len = strlen(s);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    return kn_reply_response(r, status, resp, "application/json");
}

enum MHD_Result kn_reply_error(kn_req *r, unsigned status, const char *code, const char *message,
                               json_t *details)
{
    return kn_reply_json(r, status, kn_error_body(code, message, details, r->request_id));
}

enum MHD_Result kn_reply_internal(kn_req *r, const char *cause)
{
    we_error("request failed", WE_ERR(cause), WE_S("request_id", r->request_id),
             WE_S("method", r->method), WE_S("path", r->url));
    return kn_reply_error(r, 500, "WE-SYS-001", "internal error; see the kernel log for this "
                                                "request_id", NULL);
}

enum MHD_Result kn_reply_db_error(kn_req *r, int rc, const char *cause)
{
    if (rc != WE_EUNAVAIL && rc != WE_ETIMEOUT)
        return kn_reply_internal(r, cause);
    we_error("database unavailable", WE_ERR(cause), WE_S("request_id", r->request_id));
    return kn_reply_error(r, 503, "WE-SYS-006", "the database is unavailable; retry later", NULL);
}

size_t kn_json_depth(const char *data, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

int kn_body_object(kn_req *r, json_t **out, enum MHD_Result *replied)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (ct && strncasecmp(ct, "application/json", 16) != 0) {
        *replied = kn_reply_error(r, 415, "WE-SYS-008", "the body must be application/json", NULL);
        return -1;
    }
    if (r->body.len == 0) {
        *replied = kn_reply_error(r, 400, "WE-SYS-004", "a JSON object body is required", NULL);
        return -1;
    }
    long max_depth = r->kn->cfg.sec.max_json_depth;
    if (kn_json_depth(r->body.data, r->body.len) > (size_t)max_depth) {
        char msg[96];
        snprintf(msg, sizeof msg, "the JSON body nests deeper than %ld levels", max_depth);
        *replied = kn_reply_error(r, 400, "WE-SYS-004", msg, NULL);
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        char msg[300];
        if (j)
            snprintf(msg, sizeof msg, "the body must be a JSON object");
        else
            snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", je.line,
                     je.column, je.text);
        json_decref(j);
        *replied = kn_reply_error(r, 400, "WE-SYS-004", msg, NULL);
        return -1;
    }
    *out = j;
    return 0;
}

const char *kn_query(kn_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *kn_param(kn_req *r, int i)
{
    return i < r->nparams ? r->params[i] : NULL;
}

/* ---- request lifecycle -------------------------------------------------- */

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '_')
            return false;
    return n > 0 && n < 40;
}

static kn_req *req_new(kn_http *h, struct MHD_Connection *conn, const char *url, const char *method)
{
    kn_req *r = calloc(1, sizeof *r);
    WE_ASSERT(r != NULL);
    r->kn = h->kn;
    r->conn = conn;
    r->url = url;
    r->method = method;
    r->start_us = now_us();
    we_buf_init(&r->body);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && valid_request_id(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        we_random_hex(r->request_id, 8);
    kn_auth_client_ip(r);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (kn_cors_allowed(h->kn, origin))
        r->cors_origin = origin;
    atomic_fetch_add(&h->inflight, 1);
    return r;
}

static void req_free(kn_req *r)
{
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i]);
    we_buf_fini(&r->body);
    free(r);
}

/* A CORS preflight (OPTIONS on an existing path): 204 with what the route
 * allows when the Origin is in CORS_ALLOWED_ORIGINS, else 403. */
static enum MHD_Result preflight(kn_req *r, const char *allow)
{
    if (!r->cors_origin)
        return kn_reply_error(r, 403, "WE-SYS-009",
                              "cross-origin requests from this origin are not allowed", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Idempotency-Key, X-Request-Id");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    return kn_reply_response(r, 204, resp, "text/plain");
}

/* Query arguments reach SQL as text, which PostgreSQL refuses unless UTF-8. */
static enum MHD_Result arg_utf8(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    bool *ok = cls;
    json_t *k = json_string(key), *v = json_string(value ? value : "");
    *ok = k && v;
    json_decref(k);
    json_decref(v);
    return *ok ? MHD_YES : MHD_NO;
}

static enum MHD_Result dispatch(kn_req *r)
{
    bool mismatch;
    char allow[64];
    const kn_route *rt = kn_route_match(kn_routes, r->method, r->url, r->params, &r->nparams,
                                        &mismatch, allow, sizeof allow);
    if (rt) {
        r->route = rt;
        enum MHD_Result replied;
        if (kn_auth_request(r, rt, &replied) != 0)
            return replied;
        if (r->too_large) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %ld bytes",
                     r->kn->cfg.max_body_bytes);
            return kn_reply_error(r, 413, "WE-SYS-007", msg, NULL);
        }
        bool utf8 = true;
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_utf8, &utf8);
        if (!utf8)
            return kn_reply_error(r, 400, "WE-SYS-004", "the query string is not valid UTF-8",
                                  NULL);
        return rt->fn(r);
    }
    char msg[320];
    if (r->too_large) {
        snprintf(msg, sizeof msg, "request body exceeds the limit of %ld bytes",
                 r->kn->cfg.max_body_bytes);
        return kn_reply_error(r, 413, "WE-SYS-007", msg, NULL);
    }
    if (mismatch && strcmp(r->method, "OPTIONS") == 0)
        return preflight(r, allow);
    if (mismatch) {
        snprintf(msg, sizeof msg, "method %.16s is not allowed on %.200s (allowed: %.60s)", r->method,
                 r->url, allow);
        return kn_reply_error(r, 405, "WE-SYS-003", msg, json_pack("{s:s}", "allow", allow));
    }
    snprintf(msg, sizeof msg, "no route for %.16s %.200s", r->method, r->url);
    return kn_reply_error(r, 404, "WE-SYS-002", msg, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    kn_http *h = cls;
    kn_req *r = *state;
    if (!r) {
        *state = req_new(h, conn, url, method);
        return MHD_YES; /* respond on a later call: keeps the connection alive */
    }
    if (*upload_size > 0) {
        if (!r->too_large && r->body.len + *upload_size <= (size_t)h->kn->cfg.max_body_bytes)
            we_buf_add(&r->body, upload_data, *upload_size);
        else
            r->too_large = true; /* keep reading (and dropping) so the reply can be sent */
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    kn_http *h = cls;
    kn_req *r = *state;
    if (!r)
        return;
    double ms = (double)(now_us() - r->start_us) / 1000.0;
    kn_metrics_observe_request(r, ms / 1000.0);
    if (r->route && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        kn_audit_request(r);
    if (r->status >= 100 && r->status < 600)
        atomic_fetch_add(&g_requests[r->status / 100], 1);
    if (r->status >= 500)
        we_warn("request", WE_S("method", r->method), WE_S("path", r->url),
                WE_I("status", r->status), WE_D("duration_ms", ms),
                WE_S("request_id", r->request_id));
    else if (we_log_enabled(WE_LOG_DEBUG))
        we_debug("request", WE_S("method", r->method), WE_S("path", r->url),
                 WE_I("status", r->status), WE_D("duration_ms", ms),
                 WE_S("request_id", r->request_id));
    req_free(r);
    *state = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    we_buf b;
    we_buf_init(&b);
    we_buf_vprintf(&b, fmt, ap);
    while (b.len && (b.data[b.len - 1] == '\n'))
        b.data[--b.len] = '\0';
    we_debug("http server", WE_S("detail", b.data));
    we_buf_fini(&b);
}

int kn_http_start(kn_ctx *kn, kn_http **out, we_err *err)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)kn->cfg.port);
    if (inet_pton(AF_INET, kn->cfg.bind_addr, &sa.sin_addr) != 1)
        return we_err_set(err, WE_EINVAL, "BIND_ADDR=%s is not an IPv4 address",
                          kn->cfg.bind_addr);
    kn_tls_https tls;
    int tls_rc = kn_tls_https_init(&kn->cfg.tls, &tls, err);
    if (tls_rc != 0)
        return tls_rc;
    kn_http *h = calloc(1, sizeof *h);
    WE_ASSERT(h != NULL);
    h->kn = kn;
    kn_auth_init(kn);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    h->d = MHD_start_daemon(flags | tls.flags, (uint16_t)kn->cfg.port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)kn->cfg.http_threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_ARRAY, tls.opts, MHD_OPTION_END);
    kn_tls_https_fini(&tls);
    if (!h->d) {
        kn_auth_fini();
        free(h);
        return we_err_set(err, WE_EIO, "cannot listen on %s:%ld (port in use?)",
                          kn->cfg.bind_addr, kn->cfg.port);
    }
    *out = h;
    return 0;
}

void kn_http_stop(kn_http *h, int grace_ms)
{
    if (!h)
        return;
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    kn_sse_close_all();
    int64_t end = we_now_mono_ms() + grace_ms;
    while (atomic_load(&h->inflight) > 0 && we_now_mono_ms() < end) {
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->d);
    kn_auth_fini();
    free(h);
}
