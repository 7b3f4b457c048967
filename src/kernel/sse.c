/*
 * Server-Sent Events: GET /v1/events.
 *
 * Every kernel subscribes — plainly, not in a queue group, since each needs
 * every event — to ui.events.> (the envelopes kn_event_emit publishes after
 * a commit, on whichever kernel made the change) and to live.telemetry.>
 * (wrapped here as stream.telemetry envelopes). Each message is parsed and
 * formatted once into a reference-counted sse_msg, which is appended to the
 * bounded queue of every client whose filter it passes.
 *
 * A stream is a chunked MHD response whose content reader drains its
 * client's queue. When the queue is empty the reader suspends the connection
 * (no thread, no CPU while idle); whoever queues something resumes it
 * (MHD_resume_connection is thread-safe with MHD_USE_ITC). A client whose
 * queue overflows (SSE_CLIENT_QUEUE events) gets a last "event: overflow"
 * and is disconnected, so memory per client stays bounded. A keepalive
 * comment goes to idle streams every SSE_KEEPALIVE_S, so proxies keep them
 * and dead peers are found (MHD cannot see a disconnect while suspended).
 * There is no replay: Last-Event-ID is ignored.
 *
 * Threads and ownership. One hub and one mutex (hub.mu) guard the client
 * list and every client's queue and flags. Suspend and resume are called
 * only under it, so `suspended` is exact and a resume never precedes its
 * suspend (MHD: undefined behaviour). Lock order: hub.mu, then MHD's own
 * locks; MHD calls none of our callbacks while holding one.
 *  - libnats delivery threads (on_msg) parse and format outside the lock,
 *    then append and resume under it; they never block on a client.
 *  - MHD pool threads run the handler (registers a client), the content
 *    reader (drains the queue) and the response's free callback, which
 *    unlinks and frees the client: afterwards nothing touches it or its
 *    connection.
 *  - the relay thread subscribes once NATS is connected (libnats
 *    resubscribes by itself after reconnects) and, once a second, queues the
 *    keepalives that are due.
 * kn_sse_close_all (kernel stop): the hub refuses new streams, every stream
 * ends after the message it is writing, the relay thread unsubscribes and
 * exits — before the NATS connection closes and MHD stops (MHD must not stop
 * with suspended connections).
 */
#include "sse.h"
#include "api.h"
#include "events.h"
#include "we_log.h"
#include "we_util.h"

#include <ctype.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define RETRY_HINT "retry: 3000\n\n"
#define KEEPALIVE ": keepalive\n\n"

/* One formatted event, shared by every queue it is in. */
typedef struct sse_msg {
    atomic_int refs;
    size_t len;
    char text[];
} sse_msg;

typedef struct sse_client {
    struct sse_client *prev, *next;
    struct MHD_Connection *conn;
    kn_sse_filter filter;
    sse_msg **ring; /* queue: ring[head .. head+count) modulo cap */
    size_t cap, head, count, limit;
    size_t off;    /* bytes of ring[head] already written */
    char pre[256]; /* control text (retry hint, keepalive, overflow), at message boundaries */
    size_t pre_len, pre_off;
    bool suspended;
    bool overflowed; /* flush what is in progress and the overflow event, then disconnect */
    bool closing;    /* kernel stopping: end the stream after what is in progress */
    int64_t last_ms; /* last write (or keepalive queued), monotonic */
    char request_id[40];
} sse_client;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the relay thread */
    sse_client *clients;
    int count;
    bool closing; /* set once by kn_sse_close_all */
    bool running; /* the relay thread exists and has not been joined */
    pthread_t thread;
    kn_ctx *kn;
} hub = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* ---- filters (pure) --------------------------------------------------------- */

static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return s[36] == '\0';
}

static bool is_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '_')
            return false;
    return n >= 1 && n <= max;
}

static void lower_copy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* One entry of ?types=: [a-z0-9_.]+ with an optional trailing '*', or "*". */
static bool type_pattern_ok(const char *s, size_t len)
{
    if (len == 0 || len >= 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '*' ? i != len - 1
                      : !(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_' ||
                          ch == '.'))
            return false;
    }
    return true;
}

static int parse_types(const char *types, kn_sse_filter *f, char *why, size_t why_len)
{
    const char *p = types;
    size_t used = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (!type_pattern_ok(p, len)) {
            snprintf(why, why_len,
                     "each entry must be an event type like job.completed or a "
                     "prefix ending in * like job.* (got \"%.*s\")",
                     (int)(len > 64 ? 64 : len), p);
            return -1;
        }
        if (f->ntypes == KN_SSE_MAX_TYPES || used + len + 1 > sizeof f->types) {
            snprintf(why, why_len, "at most %d entries and %zu characters", KN_SSE_MAX_TYPES,
                     sizeof f->types - KN_SSE_MAX_TYPES);
            return -1;
        }
        memcpy(f->types + used, p, len);
        f->types[used + len] = '\0';
        used += len + 1;
        f->ntypes++;
        p += strcspn(p, ",");
        if (*p == '\0')
            return 0;
        p++;
    }
}

int kn_sse_filter_parse(const char *job_id, const char *stream_id, const char *worker_id,
                        const char *types, kn_sse_filter *f, const char **bad, char *why,
                        size_t why_len)
{
    memset(f, 0, sizeof *f);
    if (job_id && !is_uuid(job_id)) {
        *bad = "job_id";
        snprintf(why, why_len, "must be a job UUID");
        return -1;
    }
    if (stream_id && !is_uuid(stream_id)) {
        *bad = "stream_id";
        snprintf(why, why_len, "must be a stream UUID");
        return -1;
    }
    if (worker_id && !is_token(worker_id, 64)) {
        *bad = "worker_id";
        snprintf(why, why_len, "must be a worker id ([A-Za-z0-9_-]{1,64})");
        return -1;
    }
    if (types && parse_types(types, f, why, why_len) != 0) {
        *bad = "types";
        return -1;
    }
    if (job_id)
        lower_copy(f->job_id, job_id, sizeof f->job_id);
    if (stream_id)
        lower_copy(f->stream_id, stream_id, sizeof f->stream_id);
    if (worker_id)
        snprintf(f->worker_id, sizeof f->worker_id, "%s", worker_id);
    return 0;
}

void kn_sse_meta_of(json_t *ev, kn_sse_meta *m)
{
    json_t *res = json_object_get(ev, "resource"), *data = json_object_get(ev, "data");
    m->type = json_string_value(json_object_get(ev, "type"));
    m->resource_type = json_string_value(json_object_get(res, "type"));
    m->resource_id = json_string_value(json_object_get(res, "id"));
    m->job_id = json_string_value(json_object_get(data, "job_id"));
    m->stream_id = json_string_value(json_object_get(data, "stream_id"));
    m->worker_id = json_string_value(json_object_get(data, "worker_id"));
}

/* An id constraint holds when the event is about that resource, or its data
 * names it (a task event's data.job_id, say). */
static bool id_match(const char *want, const char *rtype, const kn_sse_meta *m, const char *data_id)
{
    if (!want[0])
        return true;
    if (m->resource_type && m->resource_id && strcmp(m->resource_type, rtype) == 0 &&
        strcasecmp(m->resource_id, want) == 0)
        return true;
    return data_id && strcasecmp(data_id, want) == 0;
}

bool kn_sse_filter_match(const kn_sse_filter *f, const kn_sse_meta *m)
{
    if (!id_match(f->job_id, "job", m, m->job_id) ||
        !id_match(f->stream_id, "stream", m, m->stream_id) ||
        !id_match(f->worker_id, "worker", m, m->worker_id))
        return false;
    if (f->ntypes == 0)
        return true;
    if (!m->type)
        return false;
    const char *t = f->types;
    for (int i = 0; i < f->ntypes; i++, t += strlen(t) + 1) {
        size_t len = strlen(t);
        if (t[len - 1] == '*' ? strncmp(m->type, t, len - 1) == 0 : strcmp(m->type, t) == 0)
            return true;
    }
    return false;
}

const char *kn_sse_filter_type(const kn_sse_filter *f, int i)
{
    WE_ASSERT(i >= 0 && i < f->ntypes);
    const char *t = f->types;
    while (i-- > 0)
        t += strlen(t) + 1;
    return t;
}

/* A field value that cannot break the framing: printable, one line. */
static bool field_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

char *kn_sse_format(json_t *ev, const char *raw, size_t raw_len, size_t *len)
{
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!field_ok(id) || !field_ok(type))
        return NULL;
    /* The publisher's bytes as they are (numbers keep their digits) unless
     * line breaks between tokens would split the data line; compact JSON has
     * none (inside strings they are always escaped). */
    char *data = NULL;
    if (!raw || memchr(raw, '\n', raw_len) || memchr(raw, '\r', raw_len)) {
        data = json_dumps(ev, JSON_COMPACT);
        if (!data)
            return NULL;
        raw = data;
        raw_len = strlen(data);
    }
    char *out = NULL;
    int n = asprintf(&out, "id: %s\nevent: %s\ndata: %.*s\n\n", id, type, (int)raw_len, raw);
    free(data);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return out;
}

/* ---- client queues (hub.mu held) ---------------------------------------------- */

static void msg_unref(sse_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

static void client_wake(sse_client *c)
{
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

/* Drops the queue, except the message being written when keep_partial. */
static void client_drop(sse_client *c, bool keep_partial)
{
    size_t keep = keep_partial && c->count > 0 && c->off > 0 ? 1 : 0;
    for (size_t i = keep; i < c->count; i++)
        msg_unref(c->ring[(c->head + i) % c->cap]);
    c->count = keep;
    if (!keep)
        c->off = 0;
}

/* Queues control text; what is already pending stays ahead of it. */
static void client_control(sse_client *c, const char *text)
{
    size_t rest = c->pre_len - c->pre_off, n = strlen(text);
    memmove(c->pre, c->pre + c->pre_off, rest);
    WE_ASSERT(rest + n <= sizeof c->pre);
    memcpy(c->pre + rest, text, n);
    c->pre_off = 0;
    c->pre_len = rest + n;
}

static void client_overflow(sse_client *c)
{
    char text[200];
    snprintf(text, sizeof text,
             "event: overflow\ndata: {\"message\":\"this client fell %zu events behind; "
             "reconnect and re-read state\",\"queue\":%zu}\n\n",
             c->limit, c->limit);
    client_drop(c, true);
    client_control(c, text);
    c->overflowed = true;
    client_wake(c);
}

/* Queues m for c; false when this overflowed the queue. */
static bool client_push(sse_client *c, sse_msg *m)
{
    if (c->closing || c->overflowed)
        return true;
    if (c->count == c->limit) {
        client_overflow(c);
        return false;
    }
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        if (cap > c->limit)
            cap = c->limit;
        sse_msg **ring = malloc(cap * sizeof *ring);
        WE_ASSERT(ring != NULL);
        for (size_t i = 0; i < c->count; i++)
            ring[i] = c->ring[(c->head + i) % c->cap];
        free(c->ring);
        c->ring = ring;
        c->cap = cap;
        c->head = 0;
    }
    atomic_fetch_add(&m->refs, 1);
    c->ring[(c->head + c->count) % c->cap] = m;
    c->count++;
    client_wake(c);
    return true;
}

/* Copies what is due into buf: control text only at message boundaries. */
static size_t client_fill(sse_client *c, char *buf, size_t max)
{
    size_t n = 0;
    while (n < max) {
        const char *src;
        size_t avail;
        bool control = c->off == 0 && c->pre_off < c->pre_len;
        if (control) {
            src = c->pre + c->pre_off;
            avail = c->pre_len - c->pre_off;
        } else if (c->count > 0) {
            sse_msg *m = c->ring[c->head];
            src = m->text + c->off;
            avail = m->len - c->off;
        } else {
            break;
        }
        size_t k = avail < max - n ? avail : max - n;
        memcpy(buf + n, src, k);
        n += k;
        if (control) {
            c->pre_off += k;
            if (c->pre_off == c->pre_len)
                c->pre_off = c->pre_len = 0;
        } else if ((c->off += k) == c->ring[c->head]->len) {
            msg_unref(c->ring[c->head]);
            c->head = (c->head + 1) % c->cap;
            c->count--;
            c->off = 0;
        }
    }
    return n;
}

/* ---- MHD callbacks ------------------------------------------------------------ */

static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_client *c = cls;
    pthread_mutex_lock(&hub.mu);
    ssize_t ret = (ssize_t)client_fill(c, buf, max);
    if (ret > 0) {
        c->last_ms = we_now_mono_ms();
    } else if (c->overflowed) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR; /* disconnect: what it missed is gone */
    } else if (c->closing) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        c->suspended = true; /* until client_wake */
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&hub.mu);
    return ret;
}

/* MHD is done with the response (stream ended, peer gone, or never sent). */
static void client_free(void *cls)
{
    sse_client *c = cls;
    pthread_mutex_lock(&hub.mu);
    WE_ASSERT(!c->suspended);
    if (c->prev)
        c->prev->next = c->next;
    else
        hub.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hub.count--;
    client_drop(c, false);
    pthread_mutex_unlock(&hub.mu);
    free(c->ring);
    free(c);
}

/* ---- relay -------------------------------------------------------------------- */

/* The envelope for a message: ui.events.* carry one; live.telemetry.<id>
 * carries the live plugin's numbers, wrapped here. New reference or NULL. */
static json_t *envelope_of(const char *subject, const char *data, size_t len, bool *verbatim)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    *verbatim = false;
    if (!j)
        return NULL;
    if (strncmp(subject, "ui.events.", 10) == 0) {
        *verbatim = true;
        if (json_is_object(j))
            return j;
        json_decref(j);
        return NULL;
    }
    const char *stream_id = subject + strlen("live.telemetry.");
    return kn_event_new("stream.telemetry", "stream", stream_id, NULL, j);
}

static void relay(json_t *ev, const char *raw, size_t raw_len)
{
    kn_sse_meta meta;
    size_t len;
    char *text = kn_sse_format(ev, raw, raw_len, &len);
    if (!text)
        return;
    kn_sse_meta_of(ev, &meta);
    sse_msg *m = malloc(sizeof *m + len);
    WE_ASSERT(m != NULL);
    atomic_init(&m->refs, 1);
    m->len = len;
    memcpy(m->text, text, len);
    free(text);
    int overflowed = 0;
    char first[40] = "";
    pthread_mutex_lock(&hub.mu);
    for (sse_client *c = hub.closing ? NULL : hub.clients; c; c = c->next) {
        if (kn_sse_filter_match(&c->filter, &meta) && !client_push(c, m) && overflowed++ == 0)
            memcpy(first, c->request_id, sizeof first);
    }
    pthread_mutex_unlock(&hub.mu);
    msg_unref(m);
    if (overflowed) /* logged outside the lock: stderr may block */
        we_warn("event stream overflowed; disconnecting the client", WE_I("clients", overflowed),
                WE_S("request_id", first), WE_S("event", meta.type));
}

/* libnats delivery thread. Touches only the hub (static: a late call after
 * kn_sse_close_all finds it closing and does nothing). */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    bool verbatim;
    json_t *ev = envelope_of(natsMsg_GetSubject(msg), data, len, &verbatim);
    if (ev)
        relay(ev, verbatim ? data : NULL, len);
    json_decref(ev);
    natsMsg_Destroy(msg);
}

static const char *const relay_subjects[] = {"ui.events.>", "live.telemetry.>"};
#define NSUBS (sizeof relay_subjects / sizeof relay_subjects[0])

static void unsubscribe_all(natsSubscription **subs)
{
    for (size_t i = 0; i < NSUBS; i++) {
        if (subs[i]) {
            natsSubscription_Unsubscribe(subs[i]);
            natsSubscription_Destroy(subs[i]);
            subs[i] = NULL;
        }
    }
}

/* Subscribes once NATS is there. Returns true when subscribed. */
static bool subscribe_all(kn_ctx *kn, natsSubscription **subs)
{
    we_nats *n = kn_nats_get(kn);
    if (!n || !n->nc)
        return false;
    for (size_t i = 0; i < NSUBS; i++) {
        natsStatus s = natsConnection_Subscribe(&subs[i], n->nc, relay_subjects[i], on_msg, NULL);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(subs[i], 65536, 64 * 1024 * 1024);
        if (s != NATS_OK) {
            we_warn("event relay cannot subscribe; retrying", WE_S("subject", relay_subjects[i]),
                    WE_ERR(natsStatus_GetText(s)));
            unsubscribe_all(subs);
            return false;
        }
    }
    we_info("event relay subscribed", WE_S("subjects", "ui.events.>, live.telemetry.>"));
    return true;
}

static void keepalive_due(int64_t now, int64_t every_ms)
{
    for (sse_client *c = hub.clients; c; c = c->next) {
        if (c->closing || c->overflowed || c->count > 0 || c->pre_len > 0 ||
            now - c->last_ms < every_ms)
            continue;
        client_control(c, KEEPALIVE);
        c->last_ms = now;
        client_wake(c);
    }
}

static void *relay_main(void *arg)
{
    kn_ctx *kn = arg;
    natsSubscription *subs[NSUBS] = {NULL};
    bool subscribed = false;
    int64_t every_ms = kn->cfg.sse_keepalive_s * 1000;
    pthread_mutex_lock(&hub.mu);
    while (!hub.closing) {
        if (!subscribed) {                 /* NATS not connected yet: try again in a second */
            pthread_mutex_unlock(&hub.mu); /* on_msg takes hub.mu */
            subscribed = subscribe_all(kn, subs);
            pthread_mutex_lock(&hub.mu);
        }
        keepalive_due(we_now_mono_ms(), every_ms);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&hub.cv, &hub.mu, &ts);
    }
    pthread_mutex_unlock(&hub.mu);
    unsubscribe_all(subs);
    return NULL;
}

/* Each stream holds a socket: lift the soft descriptor limit towards the
 * hard one so SSE_MAX_CLIENTS streams can exist. */
static void raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= (rlim_t)want)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want ? (rlim_t)want : rl.rlim_max;
    if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        we_info("raised the open file limit for event streams", WE_I("from", (int64_t)was),
                WE_I("to", (int64_t)rl.rlim_cur));
    if (rl.rlim_cur < (rlim_t)want)
        we_warn("the open file limit caps event streams below SSE_MAX_CLIENTS",
                WE_I("nofile", (int64_t)rl.rlim_cur), WE_I("sse_max_clients", want - 1024));
}

void kn_sse_start(kn_ctx *kn)
{
    raise_nofile(kn->cfg.sse_max_clients + 1024);
    pthread_mutex_lock(&hub.mu);
    hub.kn = kn;
    if (!hub.running && !hub.closing) {
        WE_ASSERT(pthread_create(&hub.thread, NULL, relay_main, kn) == 0);
        hub.running = true;
    }
    pthread_mutex_unlock(&hub.mu);
}

void kn_sse_close_all(void)
{
    pthread_mutex_lock(&hub.mu);
    hub.closing = true;
    int n = hub.count;
    for (sse_client *c = hub.clients; c; c = c->next) {
        c->closing = true;
        client_drop(c, true);
        client_wake(c);
    }
    bool join = hub.running;
    hub.running = false;
    pthread_cond_broadcast(&hub.cv);
    pthread_mutex_unlock(&hub.mu);
    if (join)
        pthread_join(hub.thread, NULL);
    if (n > 0)
        we_info("event streams closed", WE_I("streams", n));
}

int kn_sse_clients(void)
{
    pthread_mutex_lock(&hub.mu);
    int n = hub.count;
    pthread_mutex_unlock(&hub.mu);
    return n;
}

/* ---- GET /v1/events ---------------------------------------------------------------- */

static enum MHD_Result refuse(kn_req *r, const char *message)
{
    snprintf(r->retry_after, sizeof r->retry_after, "5");
    return kn_reply_error(r, 503, "WE-SYS-010", message, NULL);
}

/* Registers a new client; NULL (with why) when the hub refuses it. */
static sse_client *client_new(kn_req *r, const kn_sse_filter *f, const char **why)
{
    sse_client *c = calloc(1, sizeof *c);
    WE_ASSERT(c != NULL);
    c->conn = r->conn;
    c->filter = *f;
    c->limit = (size_t)r->kn->cfg.sse_client_queue;
    c->last_ms = we_now_mono_ms();
    snprintf(c->request_id, sizeof c->request_id, "%s", r->request_id);
    client_control(c, RETRY_HINT);
    pthread_mutex_lock(&hub.mu);
    *why = hub.closing ? "the kernel is shutting down; reconnect to another kernel"
           : hub.count >= r->kn->cfg.sse_max_clients
               ? "too many event streams on this kernel (SSE_MAX_CLIENTS); retry later"
               : NULL;
    if (!*why) {
        c->next = hub.clients;
        if (hub.clients)
            hub.clients->prev = c;
        hub.clients = c;
        hub.count++;
    }
    pthread_mutex_unlock(&hub.mu);
    if (*why) {
        free(c);
        return NULL;
    }
    return c;
}

enum MHD_Result kn_api_events(kn_req *r)
{
    kn_sse_filter f;
    const char *bad = NULL, *why = NULL;
    char detail[200], msg[280];
    if (kn_sse_filter_parse(kn_query(r, "job_id"), kn_query(r, "stream_id"),
                            kn_query(r, "worker_id"), kn_query(r, "types"), &f, &bad, detail,
                            sizeof detail) != 0) {
        snprintf(msg, sizeof msg, "%s: %s", bad, detail);
        return kn_reply_error(r, 400, "WE-SYS-004", msg, json_pack("{s:s}", "parameter", bad));
    }
    sse_client *c = client_new(r, &f, &why);
    if (!c)
        return refuse(r, why);
    /* From here the response owns c: client_free runs when MHD drops it,
     * also when queuing fails. */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, client_read, c, client_free);
    if (!resp) {
        client_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: do not buffer */
    return kn_reply_response(r, 200, resp, "text/event-stream");
}
