/*
 * The runner thread: takes tasks while the worker has free slots, keeps the
 * running ones alive, and winds down on a stop request.
 *
 * Each round it joins finished task threads, sends InProgress for every
 * running task whose AckWait/3 has passed (and a progress message once per
 * lease_s/3 when the encoder said nothing, so a long probe keeps its lease),
 * then — unless the worker is draining, stopping, full, or has no healthy
 * encoder and storage plugin — fetches one message from the next bound
 * consumer (consumer.c; round robin when there are several capabilities)
 * with a 1 s long-poll shared among them. A message is parsed here: one
 * without a usable envelope is Term'ed and logged; a redelivery of a task
 * this worker is already running replaces the held message instead of
 * running it twice; anything else gets a slot and a thread (slot.c).
 *
 * jobs.cancel ({"job_id"}) arrives on a libnats thread: it sets the cancel
 * flag of every running task of that job (the encoder kills FFmpeg within
 * a second; the task then ends without an event and acks).
 *
 * Stop (SIGTERM): no more fetches; running tasks get WORKER_STOP_GRACE_S to
 * finish and report; then they are cancelled and their messages nak'ed so
 * another worker takes them at once. The thread ends when no task is left.
 *
 * Threads: this thread owns the consumers and joins the task threads; the
 * slots' shared fields are under r->mu (slot.h). w->running counts tasks
 * for the heartbeat.
 */
#include "slot.h"
#include "we_log.h"
#include "we_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_MS 1000 /* the long-poll of one round, shared by the consumers */
#define STOP_POLL_MS 200

/* ---- the lock and the condition ------------------------------------------------------- */

void wk_runner_cond_wait(wk_runner *r, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void nap(wk_runner *r, int64_t ms)
{
    pthread_mutex_lock(&r->mu);
    wk_runner_cond_wait(r, ms);
    pthread_mutex_unlock(&r->mu);
}

/* ---- slots ------------------------------------------------------------------------- */

static int busy_count(wk_runner *r)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots; i++)
        n += r->slots[i].busy;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static bool sub_held(wk_runner *r, natsSubscription *sub)
{
    for (int i = 0; i < r->nslots; i++)
        if (r->slots[i].busy && r->slots[i].sub == sub)
            return true;
    return false;
}

/* Destroys retired subscriptions that no task holds a message of any more. */
static void drop_retired(wk_runner *r)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->nretired; i++) {
        pthread_mutex_lock(&r->mu);
        bool held = sub_held(r, r->retired[i]);
        pthread_mutex_unlock(&r->mu);
        if (held)
            r->retired[kept++] = r->retired[i];
        else
            natsSubscription_Destroy(r->retired[i]);
    }
    r->nretired = kept;
}

/* Joins the threads of finished tasks and frees their slots. */
static void reap(wk_runner *r)
{
    for (int i = 0; i < r->nslots; i++) {
        wk_slot *s = &r->slots[i];
        pthread_mutex_lock(&r->mu);
        bool finished = s->busy && s->done;
        pthread_mutex_unlock(&r->mu);
        if (!finished)
            continue;
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&r->mu);
        s->busy = false;
        s->sub = NULL;
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_sub(&r->w->running, 1);
    }
    drop_retired(r);
}

/* InProgress every keepalive_ms; progress every lease_s/3 without news. */
static void keepalive_one(wk_slot *s, int64_t now)
{
    if (!s->busy || s->done || !s->msg)
        return;
    if (now >= s->in_progress_at_ms) {
        natsMsg_InProgress(s->msg, NULL);
        s->in_progress_at_ms = now + s->keepalive_ms;
    }
    if (now - s->progress_sent_ms >= (int64_t)s->task.lease_s * 1000 / 3) {
        s->progress_sent_ms = now;
        wk_slot_publish_progress(s, &s->progress); /* a core publish: no waiting */
    }
}

static void keepalive(wk_runner *r)
{
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots; i++)
        keepalive_one(&r->slots[i], now);
    pthread_mutex_unlock(&r->mu);
}

/* ---- taking a message ------------------------------------------------------------------- */

/* A redelivery of a task running here (its InProgress was lost): keep one
 * run and hold the newer delivery. True when msg was adopted. */
static bool adopt_redelivery(wk_runner *r, const wk_task *t, natsMsg *msg, natsSubscription *sub)
{
    natsMsg *old = NULL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots && !old; i++) {
        wk_slot *s = &r->slots[i];
        if (s->busy && !s->done && s->msg && s->task.attempt == t->attempt &&
            strcmp(s->task.task_id, t->task_id) == 0) {
            old = s->msg;
            s->msg = msg;
            s->sub = sub;
            s->in_progress_at_ms = 0;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (old)
        we_info("redelivered task is already running here", WE_S("task_id", t->task_id),
                WE_I("attempt", t->attempt));
    natsMsg_Destroy(old);
    return old != NULL;
}

static wk_slot *fill_slot(wk_runner *r, wk_task *t, natsMsg *msg, const wk_consumer *c)
{
    wk_slot *s = NULL;
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots && !s; i++)
        if (!r->slots[i].busy)
            s = &r->slots[i];
    if (s) {
        s->task = *t; /* takes t->params */
        s->busy = true;
        s->done = false;
        s->msg = msg;
        s->sub = c->sub;
        atomic_store(&s->cancel, false);
        s->stop = WK_STOP_NONE;
        s->keepalive_ms = c->keepalive_ms;
        s->in_progress_at_ms = now + c->keepalive_ms;
        memset(&s->progress, 0, sizeof s->progress);
        s->progress_sent_ms = now;
    }
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* Frees a slot whose thread could not start, handing the message back. */
static void unfill_slot(wk_runner *r, wk_slot *s)
{
    pthread_mutex_lock(&r->mu);
    natsMsg *msg = s->msg;
    s->msg = NULL;
    s->busy = false;
    pthread_mutex_unlock(&r->mu);
    natsMsg_Nak(msg, NULL);
    natsMsg_Destroy(msg);
    wk_task_fini(&s->task);
}

static void start_task(wk_runner *r, wk_task *t, natsMsg *msg, const wk_consumer *c)
{
    wk_slot *s = fill_slot(r, t, msg, c);
    WE_ASSERT(s); /* a fetch asks for a message only when a slot is free */
    if (pthread_create(&s->thread, NULL, wk_slot_main, s) == 0) {
        atomic_fetch_add(&r->w->running, 1);
        return;
    }
    we_error("task not started: cannot create its thread", WE_S("task_id", s->task.task_id));
    unfill_slot(r, s);
}

static void take(wk_runner *r, natsMsg *msg, const wk_consumer *c)
{
    wk_task t;
    we_err err;
    if (wk_task_parse(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &t, &err) != 0) {
        we_warn("dispatch message terminated", WE_ERR(err.msg),
                WE_S("subject", natsMsg_GetSubject(msg)), WE_S("consumer", c->durable));
        natsMsg_Term(msg, NULL);
        natsMsg_Destroy(msg);
        return;
    }
    if (adopt_redelivery(r, &t, msg, c->sub))
        wk_task_fini(&t);
    else
        start_task(r, &t, msg, c);
}

/* ---- a round -------------------------------------------------------------------------- */

/* Binds the consumers that are due; returns how many are bound. */
static size_t bind_due(wk_runner *r)
{
    size_t bound = 0;
    int64_t now = we_now_mono_ms();
    for (size_t i = 0; i < r->ncons; i++) {
        wk_consumer *c = &r->cons[i];
        if (!c->sub && now >= c->bind_at_ms)
            wk_consumer_bind(c, r->w->nats.js);
        bound += c->sub != NULL;
    }
    return bound;
}

static bool plugins_ready(wk_runner *r)
{
    char id[WE_PLUGIN_ID_MAX + 1];
    we_host *h = r->w->plugins;
    bool ok = h && we_host_pick(h, WE_PT_ENCODER, id, NULL) == 0 &&
              we_host_pick(h, WE_PT_STORAGE, id, NULL) == 0;
    if (!ok && !r->idle)
        we_warn("not taking tasks: no healthy encoder and storage plugin",
                WE_S("worker_id", r->w->cfg.id));
    else if (ok && r->idle)
        we_info("taking tasks again: plugins are healthy", WE_S("worker_id", r->w->cfg.id));
    r->idle = !ok;
    return ok;
}

static bool can_take(wk_runner *r)
{
    return !atomic_load(&r->w->draining) && busy_count(r) < r->nslots && plugins_ready(r);
}

static void fetch_round(wk_runner *r, size_t bound)
{
    wk_consumer *c = NULL;
    for (size_t i = 0; i < r->ncons && !c; i++, r->next = (r->next + 1) % r->ncons)
        if (r->cons[r->next].sub)
            c = &r->cons[r->next];
    WE_ASSERT(c);
    natsMsg *msg = NULL;
    natsSubscription *lost = NULL;
    int rc = wk_consumer_fetch(c, FETCH_MS / (int64_t)bound, &msg, &lost);
    if (lost) {
        r->retired = realloc(r->retired, (r->nretired + 1) * sizeof *r->retired);
        WE_ASSERT(r->retired);
        r->retired[r->nretired++] = lost;
    }
    if (msg)
        take(r, msg, c);
    else if (rc != 0)
        nap(r, FETCH_MS);
}

/* The grace after a stop request; false once no task is left. */
static bool wind_down(wk_runner *r)
{
    int64_t now = we_now_mono_ms();
    int busy = busy_count(r);
    if (!r->stop_at_ms) {
        r->stop_at_ms = now + (int64_t)r->w->cfg.stop_grace_s * 1000;
        we_info("stopping: no new tasks; waiting for running ones", WE_I("running", busy),
                WE_I("grace_s", r->w->cfg.stop_grace_s));
    }
    if (busy == 0)
        return false;
    pthread_mutex_lock(&r->mu);
    if (now >= r->stop_at_ms && !r->aborting) {
        r->aborting = true;
        for (int i = 0; i < r->nslots; i++) {
            wk_slot *s = &r->slots[i];
            if (s->busy && !s->done && s->stop == WK_STOP_NONE) {
                s->stop = WK_STOP_SHUTDOWN;
                atomic_store(&s->cancel, true);
            }
        }
        we_warn("stop grace over: cancelling running tasks", WE_I("running", busy));
    }
    wk_runner_cond_wait(r, STOP_POLL_MS);
    pthread_mutex_unlock(&r->mu);
    return true;
}

static bool round_once(wk_runner *r)
{
    reap(r);
    keepalive(r);
    if (we_stopping())
        return wind_down(r);
    size_t bound = bind_due(r);
    if (bound == 0 || !can_take(r))
        nap(r, FETCH_MS);
    else
        fetch_round(r, bound);
    return true;
}

static void *runner_main(void *arg)
{
    wk_runner *r = arg;
    while (round_once(r))
        ;
    pthread_mutex_lock(&r->mu);
    r->finished = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- jobs.cancel ---------------------------------------------------------------------- */

static int cancel_job(wk_runner *r, const char *job_id)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots; i++) {
        wk_slot *s = &r->slots[i];
        if (s->busy && !s->done && s->stop == WK_STOP_NONE && strcmp(s->task.job_id, job_id) == 0) {
            s->stop = WK_STOP_CANCEL;
            atomic_store(&s->cancel, true);
            n++;
        }
    }
    pthread_cond_broadcast(&r->cv); /* a task retrying a publish gives up now */
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void on_cancel(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    wk_runner *r = closure;
    char job_id[WK_ID_MAX + 1];
    we_err err;
    if (wk_cancel_parse(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), job_id, &err) !=
        0) {
        we_warn("cancel message ignored", WE_ERR(err.msg));
    } else {
        int n = cancel_job(r, job_id);
        if (n > 0)
            we_info("job cancelled: stopping its tasks", WE_S("job_id", job_id), WE_I("tasks", n));
    }
    natsMsg_Destroy(msg);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int init_sync(wk_runner *r)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    return rc == 0 ? 0 : WE_ENOMEM;
}

static wk_runner *runner_new(wk_worker *w)
{
    wk_runner *r = calloc(1, sizeof *r);
    const wk_strlist *caps = &w->caps.capabilities;
    WE_ASSERT(r);
    r->w = w;
    r->nslots = w->cfg.slots;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    r->ncons = caps->n;
    r->cons = calloc(caps->n ? caps->n : 1, sizeof *r->cons);
    WE_ASSERT(r->slots && r->cons && init_sync(r) == 0);
    for (int i = 0; i < r->nslots; i++)
        r->slots[i].r = r;
    for (size_t i = 0; i < caps->n; i++)
        wk_consumer_init(&r->cons[i], caps->v[i]);
    return r;
}

int wk_runner_start(wk_worker *w, wk_runner **out, we_err *err)
{
    natsStatus s = NATS_OK;
    wk_runner *r = runner_new(w);
    *out = r;
    if (!w->nats.js)
        s = natsConnection_JetStream(&w->nats.js, w->nats.nc, NULL);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&r->cancel_sub, w->nats.nc, "jobs.cancel", on_cancel, r);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "task runner: %s", natsStatus_GetText(s));
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0)
        return we_err_set(err, WE_ENOMEM, "task runner: cannot start its thread");
    r->started = true;
    return 0;
}

bool wk_runner_wait(wk_runner *r, int64_t ms)
{
    int64_t end = we_now_mono_ms() + ms;
    pthread_mutex_lock(&r->mu);
    for (int64_t now = we_now_mono_ms(); !r->finished && now < end; now = we_now_mono_ms())
        wk_runner_cond_wait(r, end - now);
    bool finished = r->finished || !r->started;
    pthread_mutex_unlock(&r->mu);
    return finished;
}

void wk_runner_stop(wk_runner *r)
{
    if (!r)
        return;
    if (r->started)
        pthread_join(r->thread, NULL);
    r->started = false;
    natsSubscription_Destroy(r->cancel_sub);
    r->cancel_sub = NULL;
    for (size_t i = 0; i < r->ncons; i++) {
        natsSubscription_Destroy(r->cons[i].sub);
        r->cons[i].sub = NULL;
    }
    for (size_t i = 0; i < r->nretired; i++)
        natsSubscription_Destroy(r->retired[i]);
    r->nretired = 0;
}

void wk_runner_free(wk_runner *r)
{
    if (!r)
        return;
    wk_runner_stop(r);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->retired);
    free(r->slots);
    free(r->cons);
    free(r);
}
