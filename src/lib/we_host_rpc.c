/*
 * JSON-RPC over a plugin's pipes: building requests, matching responses and
 * progress notifications to the calls in flight, and completing calls.
 *
 * Every request in flight is a we__call linked to its process under h->mu,
 * with an id unique within that process (the handshake is id 0). The stdout
 * reader thread parses each line without the lock, then takes it to find the
 * call and complete it. A response whose id was issued but is no longer in
 * flight (the host gave up at the deadline) is late and dropped; an id never
 * issued is a protocol violation, as is any line that is not a JSON-RPC 2.0
 * object. Completing a user call wakes the thread blocked in we_host_call;
 * completing one of the host's own calls (handshake, health, shutdown) runs
 * its handler in the supervisor's state machine, still under h->mu.
 */
#include "we_host_int.h"
#include "we_log.h"
#include "we_util.h"

#include <webencode/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_QUEUE_MAX 1000

void we__rpc_error_set(we_rpc_error *e, int code, const char *we_code, bool retryable,
                       const char *fmt, ...)
{
    if (!e)
        return;
    e->code = code;
    snprintf(e->we_code, sizeof e->we_code, "%s", we_code ? we_code : "");
    e->retryable = retryable;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* --- calls ---------------------------------------------------------------------- */

void we__call_init(we__call *c, we__call_kind kind, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->sent_ms = we__now();
    c->deadline_ms = c->sent_ms + timeout_ms;
    if (kind == WE__CALL_USER)
        we__cond_init(&c->cond);
}

void we__call_fini(we__call *c)
{
    if (c->kind == WE__CALL_USER)
        pthread_cond_destroy(&c->cond);
    json_decref(c->result);
    json_decref(c->progress);
    c->result = c->progress = NULL;
}

void we__call_link(we__proc *pr, we__call *c)
{
    c->id = pr->next_id++;
    c->next = pr->calls;
    c->prev = NULL;
    if (pr->calls)
        pr->calls->prev = c;
    pr->calls = c;
    c->linked = true;
}

static void call_unlink(we__proc *pr, we__call *c)
{
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        pr->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->linked = false;
}

static we__call *call_find(we__proc *pr, int64_t id)
{
    for (we__call *c = pr->calls; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

void we__call_complete(we__proc *pr, we__call *c, int rc, json_t *result, const we_rpc_error *rerr)
{
    if (c->done) {
        json_decref(result);
        return;
    }
    call_unlink(pr, c);
    c->done = true;
    c->rc = rc;
    c->result = result;
    if (rerr)
        c->rerr = *rerr;
    switch (c->kind) {
    case WE__CALL_USER:
        pthread_cond_signal(&c->cond);
        return;
    case WE__CALL_HANDSHAKE:
        we__handshake_done(pr->h, pr, c);
        break;
    case WE__CALL_HEALTH:
        we__health_done(pr->h, pr, c);
        break;
    case WE__CALL_SHUTDOWN:
        break;
    }
    we__call_fini(c);
    free(c);
}

void we__calls_fail_all(we__proc *pr, const char *why)
{
    we_rpc_error e;
    we__rpc_error_set(&e, 0, WE_HOST_UNAVAILABLE, true, "plugin %s %s during the call", pr->p->id,
                      why);
    while (pr->calls)
        we__call_complete(pr, pr->calls, WE_EUNAVAIL, NULL, &e);
}

void we__calls_expire(we__proc *pr, int64_t now)
{
    we__call *c = pr->calls;
    while (c) {
        if (c->kind == WE__CALL_USER || c->deadline_ms > now) {
            c = c->next;
            continue;
        }
        we_rpc_error e;
        we__rpc_error_set(&e, WE_RPC_DEADLINE, WE_HOST_DEADLINE, true, "no answer within %lld ms",
                          (long long)(c->deadline_ms - c->sent_ms));
        c->expired = true;
        we__call_complete(pr, c, WE_ETIMEOUT, NULL, &e);
        c = pr->calls; /* the handler may have changed the list */
    }
}

/* --- requests ------------------------------------------------------------------ */

char *we__request_line(int64_t id, const char *method, json_t *params, int timeout_ms, size_t *len)
{
    json_t *pv = params ? json_incref(params) : json_object();
    json_t *msg = json_pack("{s:s, s:I, s:s, s:o, s:{s:i}}", "jsonrpc", "2.0", "id", (json_int_t)id,
                            "method", method, "params", pv, "meta", "deadline_ms", timeout_ms);
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n + 1 > WE_PLUGIN_MAX_MESSAGE) {
        free(s);
        return NULL;
    }
    char *line = realloc(s, n + 2);
    WE_ASSERT(line != NULL);
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

void we__write_failed(we__proc *pr, int rc, int waited_ms)
{
    if (rc == WE_ETIMEOUT) {
        we__proc_fail(pr, "stopped reading its input (a write waited %d ms)", waited_ms);
        return;
    }
    /* It closed its input, so it is probably exiting: writes stop here, and
     * its end-of-file or exit (after what it wrote before) ends it. */
    atomic_store(&pr->broken, true);
    we__kick(pr->h);
}

void we__send_async(we_host *h, we__proc *pr, we__call_kind kind, const char *method,
                    json_t *params, int timeout_ms)
{
    we__call *c = malloc(sizeof *c);
    WE_ASSERT(c != NULL);
    we__call_init(c, kind, timeout_ms);
    we__call_link(pr, c);
    size_t len = 0;
    char *line = we__request_line(c->id, method, params, timeout_ms, &len);
    WE_ASSERT(line != NULL); /* the host's own requests are small */
    pr->refs++;
    pthread_mutex_unlock(&h->mu);
    int rc = we__proc_write(pr, line, len, we__now() + timeout_ms);
    pthread_mutex_lock(&h->mu);
    free(line);
    if (rc != 0)
        we__write_failed(pr, rc, timeout_ms);
    we__proc_unref(pr);
}

/* --- lines from the plugin -------------------------------------------------------- */

/* A printable excerpt of a line for messages. */
static void excerpt(const char *line, size_t len, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < n; i++)
        out[k++] = (line[i] >= 0x20 && line[i] < 0x7F) ? line[i] : '?';
    if (len > k && k + 4 <= n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

static bool violation(we__proc *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool violation(we__proc *pr, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    we_error("plugin protocol violation", WE_S("plugin", pr->p->id), WE_ERR(why));
    pthread_mutex_lock(&pr->h->mu);
    we__proc_fail(pr, "protocol violation: %s", why);
    pthread_mutex_unlock(&pr->h->mu);
    return false;
}

static int rc_of_code(int code)
{
    switch (code) {
    case WE_RPC_INVALID_REQUEST:
    case WE_RPC_METHOD_NOT_FOUND:
    case WE_RPC_INVALID_PARAMS:
        return WE_EINVAL;
    case WE_RPC_DEADLINE:
        return WE_ETIMEOUT;
    default:
        return WE_EIO;
    }
}

static void error_of(json_t *error, we_rpc_error *e)
{
    int code = (int)json_integer_value(json_object_get(error, "code"));
    json_t *data = json_object_get(error, "data");
    const char *we_code = json_string_value(json_object_get(data, "we_code"));
    if (!we_code)
        we_code = code == WE_RPC_CANCELLED  ? WE_HOST_CANCELLED
                  : code == WE_RPC_DEADLINE ? WE_HOST_DEADLINE
                                            : "";
    const char *msg = json_string_value(json_object_get(error, "message"));
    we__rpc_error_set(e, code, we_code, json_is_true(json_object_get(data, "retryable")), "%s",
                      msg ? msg : "");
}

static bool response(we__proc *pr, json_t *m)
{
    json_t *idv = json_object_get(m, "id");
    json_t *result = json_object_get(m, "result"), *error = json_object_get(m, "error");
    if (!json_is_integer(idv))
        return violation(pr, "a response without an integer id");
    long long id = json_integer_value(idv);
    if ((result != NULL) == (error != NULL))
        return violation(pr, "response %lld must carry exactly one of result and error", id);
    if (error && !json_is_integer(json_object_get(error, "code")))
        return violation(pr, "response %lld has a malformed error object", id);
    we_rpc_error e = {0};
    if (error)
        error_of(error, &e);
    /* The result leaves the message before it changes threads, so only the
     * caller ever releases it (jansson's refcounts do not order frees). */
    json_incref(result);
    json_object_del(m, "result");
    pthread_mutex_lock(&pr->h->mu);
    we__call *c = call_find(pr, id);
    bool late = !c && id >= 0 && id < pr->next_id;
    if (c) {
        we__call_complete(pr, c, error ? rc_of_code(e.code) : 0, result, error ? &e : NULL);
        result = NULL;
    }
    pthread_mutex_unlock(&pr->h->mu);
    json_decref(result);
    if (!c && !late)
        return violation(pr, "a response to unknown id %lld", id);
    return true;
}

static void progress(we__proc *pr, json_t *params)
{
    json_t *idv = json_object_get(params, "id"), *prog = json_object_get(params, "progress");
    if (!json_is_integer(idv) || !prog)
        return;
    json_incref(prog); /* detached from the message, as a result is */
    json_object_del(params, "progress");
    pthread_mutex_lock(&pr->h->mu);
    we__call *c = call_find(pr, json_integer_value(idv));
    if (c && c->kind == WE__CALL_USER) {
        if (!c->progress)
            c->progress = json_array();
        if (json_array_size(c->progress) < PROGRESS_QUEUE_MAX) {
            json_array_append_new(c->progress, prog);
            prog = NULL;
        }
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&pr->h->mu);
    json_decref(prog);
}

/* A request from the plugin: the host serves no methods. */
static void refuse_request(we__proc *pr, json_t *id)
{
    json_t *msg = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code",
                            WE_RPC_METHOD_NOT_FOUND, "message", "the host serves no methods");
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!s)
        return;
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL; the length below is explicit */
    we__proc_write(pr, s, n + 1, we__now() + 1000);
    free(s);
}

static bool message(we__proc *pr, json_t *m)
{
    if (!json_is_object(m))
        return violation(pr, "a line that is not a JSON object");
    json_t *v = json_object_get(m, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
        return violation(pr, "a message without \"jsonrpc\":\"2.0\"");
    json_t *method = json_object_get(m, "method");
    if (!method)
        return response(pr, m);
    if (!json_is_string(method))
        return violation(pr, "a message whose method is not a string");
    if (json_object_get(m, "id"))
        refuse_request(pr, json_object_get(m, "id"));
    else if (strcmp(json_string_value(method), "$/progress") == 0)
        progress(pr, json_object_get(m, "params"));
    return true; /* other notifications: unknown ones are ignored (§9) */
}

bool we__handle_line(we__proc *pr, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb(line, len, 0, &jerr);
    if (!m) {
        char ex[80];
        excerpt(line, len, ex, sizeof ex);
        return violation(pr, "a line that is not JSON (%s): %s", jerr.text, ex);
    }
    bool ok = message(pr, m);
    json_decref(m);
    return ok;
}

/* --- we_host_call ------------------------------------------------------------------- */

/* Delivers queued progress on the calling thread (h->mu held, released for
 * the callback). False when there was none. */
static bool deliver_progress(we_host *h, we__call *c, we_host_progress_fn fn, void *arg)
{
    json_t *queue = c->progress;
    if (!queue)
        return false;
    c->progress = NULL;
    pthread_mutex_unlock(&h->mu);
    size_t i;
    json_t *v;
    json_array_foreach(queue, i, v) if (fn) fn(arg, v);
    json_decref(queue);
    pthread_mutex_lock(&h->mu);
    return true;
}

static void send_cancel(we_host *h, we__proc *pr, int64_t id)
{
    char line[128];
    int n = snprintf(line, sizeof line,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancel\",\"params\":{\"id\":%lld}}\n",
                     (long long)id);
    pthread_mutex_unlock(&h->mu);
    int rc = we__proc_write(pr, line, (size_t)n, we__now() + 1000);
    pthread_mutex_lock(&h->mu);
    if (rc != 0 && !pr->stopping)
        we__write_failed(pr, rc, 1000);
}

/* The host gives up at the deadline: the call ends, the plugin is told. */
static void expire_user(we_host *h, we__proc *pr, we__call *c, const char *id, const char *method)
{
    call_unlink(pr, c);
    c->done = true;
    int timeout = (int)(c->deadline_ms - c->sent_ms);
    if (c->cancel_sent) {
        c->rc = WE_EIO;
        we__rpc_error_set(&c->rerr, WE_RPC_CANCELLED, WE_HOST_CANCELLED, false,
                          "plugin %s: %s cancelled (unconfirmed at the %d ms deadline)", id, method,
                          timeout);
        return;
    }
    c->rc = WE_ETIMEOUT;
    we__rpc_error_set(&c->rerr, WE_RPC_DEADLINE, WE_HOST_DEADLINE, true,
                      "plugin %s: %s: deadline exceeded (%d ms)", id, method, timeout);
    if (!pr->dead)
        send_cancel(h, pr, c->id);
}

static void wait_call(we_host *h, we__proc *pr, we__call *c, const char *id, const char *method,
                      we_host_progress_fn fn, void *arg, const atomic_bool *cancel)
{
    while (!c->done) {
        if (deliver_progress(h, c, fn, arg))
            continue;
        if (cancel && atomic_load(cancel) && !c->cancel_sent) {
            c->cancel_sent = true;
            send_cancel(h, pr, c->id);
            continue;
        }
        int64_t now = we__now(), until = c->deadline_ms;
        if (now >= c->deadline_ms) {
            expire_user(h, pr, c, id, method);
            break;
        }
        if (cancel && !c->cancel_sent && until > now + 20)
            until = now + 20; /* the flag cannot signal us: poll it */
        we__cond_wait_until(&c->cond, &h->mu, until);
    }
    deliver_progress(h, c, fn, arg);
}

/* The plugin's process when it can take calls (h->mu held). */
static int callable(we_host *h, const char *id, we__proc **pr, we_rpc_error *rerr, we_err *err)
{
    we__plugin *p = we__find(h, id);
    if (!p) {
        we__rpc_error_set(rerr, 0, WE_HOST_NOT_FOUND, false, "no plugin %s", id);
        return we_err_set(err, WE_ENOENT, "no plugin %s", id);
    }
    bool up = p->state == WE_PS_HEALTHY || p->state == WE_PS_DEGRADED;
    if (!up || !p->proc || p->proc->dead || p->proc->stopping) {
        we__rpc_error_set(rerr, 0, WE_HOST_UNAVAILABLE, true, "plugin %s is %s%s%s", id,
                          we_pstate_name(p->state), p->last_error[0] ? ": " : "", p->last_error);
        return we_err_set(err, WE_EUNAVAIL, "%s", rerr->message);
    }
    *pr = p->proc;
    return 0;
}

static int check_request(const char *method, json_t *params, we_rpc_error *rerr, we_err *err)
{
    static const char *const reserved[] = {"handshake", "shutdown"};
    bool bad = !method || !method[0] || strncmp(method, "$/", 2) == 0;
    for (size_t i = 0; !bad && i < sizeof reserved / sizeof reserved[0]; i++)
        bad = strcmp(method, reserved[i]) == 0;
    if (bad) {
        we__rpc_error_set(rerr, 0, WE_HOST_REFUSED, false, "method '%s' cannot be called",
                          method ? method : "");
        return we_err_set(err, WE_EINVAL, "%s", rerr->message);
    }
    if (params && !json_is_object(params)) {
        we__rpc_error_set(rerr, 0, WE_HOST_REFUSED, false, "params of %s must be an object",
                          method);
        return we_err_set(err, WE_EINVAL, "%s", rerr->message);
    }
    return 0;
}

/* Sends c's request (h->mu held, released while writing). */
static void send_request(we_host *h, we__proc *pr, we__call *c, const char *line, size_t len)
{
    pthread_mutex_unlock(&h->mu);
    int rc = we__proc_write(pr, line, len, c->deadline_ms);
    pthread_mutex_lock(&h->mu);
    if (rc == 0 || c->done)
        return;
    we__write_failed(pr, rc, (int)(c->deadline_ms - c->sent_ms));
    we_rpc_error e;
    we__rpc_error_set(&e, 0, WE_HOST_UNAVAILABLE, true, "plugin %s: cannot send the request",
                      pr->p->id);
    we__call_complete(pr, c, WE_EUNAVAIL, NULL, &e);
}

static int call_result(we__call *c, json_t **result, we_rpc_error *rerr, we_err *err)
{
    if (c->rc == 0) {
        *result = c->result;
        c->result = NULL;
        return 0;
    }
    if (rerr)
        *rerr = c->rerr;
    return we_err_set(err, c->rc, "%s", c->rerr.message);
}

int we_host_call(we_host *h, const char *id, const char *method, json_t *params, int timeout_ms,
                 we_host_progress_fn progress_fn, void *progress_arg, const atomic_bool *cancel,
                 json_t **result, we_rpc_error *rerr, we_err *err)
{
    *result = NULL;
    if (rerr)
        memset(rerr, 0, sizeof *rerr);
    we_rpc_error scratch;
    int rc = check_request(method, params, rerr ? rerr : &scratch, err);
    if (rc != 0)
        return rc;
    if (timeout_ms <= 0)
        timeout_ms = h->o.call_timeout_ms;
    we__call c;
    we__call_init(&c, WE__CALL_USER, timeout_ms);
    we__proc *pr = NULL;
    pthread_mutex_lock(&h->mu);
    rc = callable(h, id, &pr, rerr ? rerr : &scratch, err);
    if (rc == 0) {
        we__call_link(pr, &c);
        pr->refs++;
        size_t len = 0;
        char *line = we__request_line(c.id, method, params, timeout_ms, &len);
        if (line)
            send_request(h, pr, &c, line, len);
        else
            we__call_complete(pr, &c, WE_EINVAL, NULL, NULL);
        free(line);
        wait_call(h, pr, &c, id, method, progress_fn, progress_arg, cancel);
        if (!line)
            we__rpc_error_set(&c.rerr, 0, WE_HOST_REFUSED, false,
                              "cannot encode the request to %s (over 16 MiB?)", method);
        rc = call_result(&c, result, rerr, err);
        we__proc_unref(pr);
    }
    pthread_mutex_unlock(&h->mu);
    we__call_fini(&c);
    return rc;
}
