/*
 * The life of one task on its own thread (docs/pipeline.md §2–3):
 * "started" on jobs.events.<job_id>, the work (exec.c) with its progress
 * forwarded to jobs.progress.<job_id> at most once a second, then
 * "completed" or "failed", and only after JetStream has acknowledged that
 * event, the dispatch message's AckSync.
 *
 * Events are JetStream publishes with Nats-Msg-Id <task>.<attempt>.<event>,
 * so a retry after a lost PubAck is dropped by the stream's duplicate
 * window. A publish that fails (NATS down) is retried with backoff for as
 * long as it takes — the message is not acked before, so nothing is lost if
 * the worker dies meanwhile — until the job is cancelled (the kernel
 * records nothing for it any more) or the stop grace is over.
 *
 * How a task ends without an event: a jobs.cancel for its job (ack: the
 * kernel has already marked it cancelled) or the end of the stop grace
 * (nak: another worker takes it at once instead of after AckWait).
 *
 * Threads: the task thread owns the slot's task; the message, the stop
 * reason and the progress are shared with the runner thread (InProgress,
 * lease renewal) and the jobs.cancel callback under r->mu (slot.h). The
 * thread's last act is setting s->done under the lock; the runner joins it.
 */
#include "slot.h"
#include "exec.h"
#include "exporter.h"
#include "we_log.h"
#include "we_util.h"

#include <stdlib.h>
#include <string.h>

#define PROGRESS_EVERY_MS 1000
#define PUB_WAIT_MS 5000
#define ACK_WAIT_MS 5000
#define ACK_TRIES 3

/* ---- helpers under the lock ------------------------------------------------------- */

static wk_stop stop_reason(wk_slot *s)
{
    pthread_mutex_lock(&s->r->mu);
    wk_stop why = s->stop;
    pthread_mutex_unlock(&s->r->mu);
    return why;
}

/* Whether publishing should stop: nobody wants the event any more. */
static bool give_up(wk_slot *s)
{
    pthread_mutex_lock(&s->r->mu);
    bool stop = s->stop == WK_STOP_CANCEL || s->r->aborting;
    pthread_mutex_unlock(&s->r->mu);
    return stop;
}

static void nap(wk_slot *s, int64_t ms)
{
    pthread_mutex_lock(&s->r->mu);
    wk_runner_cond_wait(s->r, ms);
    pthread_mutex_unlock(&s->r->mu);
}

/* ---- messages ---------------------------------------------------------------------- */

void wk_slot_publish_progress(wk_slot *s, const wk_progress *p)
{
    char subject[128];
    wk_worker *w = s->r->w;
    char *text = wk_progress_json(&s->task, w->cfg.id, p);
    wk_task_subject(&s->task, "progress", subject, sizeof subject);
    if (text)
        natsConnection_Publish(w->nats.nc, subject, text, (int)strlen(text));
    free(text);
}

/* The encoder's $/progress ({percent, speed, out_time_s, …}), on this thread. */
static void on_progress(void *arg, json_t *msg)
{
    wk_slot *s = arg;
    wk_progress p = {json_number_value(json_object_get(msg, "percent")),
                     json_number_value(json_object_get(msg, "out_time_s")),
                     json_number_value(json_object_get(msg, "speed"))};
    int64_t now = we_now_mono_ms();
    pthread_mutex_lock(&s->r->mu);
    s->progress = p;
    bool send = now - s->progress_sent_ms >= PROGRESS_EVERY_MS;
    if (send)
        s->progress_sent_ms = now;
    pthread_mutex_unlock(&s->r->mu);
    if (json_object_get(msg, "speed")) /* only encodes report one */
        wk_metrics_progress((int)(s - s->r->slots), p.speed);
    if (send)
        wk_slot_publish_progress(s, &p);
}

static int publish_once(wk_slot *s, const char *event, const char *text, we_err *err)
{
    char subject[128], msg_id[192];
    jsPubOptions po;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    wk_task_subject(&s->task, "events", subject, sizeof subject);
    wk_task_msg_id(&s->task, event, msg_id, sizeof msg_id);
    if (strcmp(event, "started") == 0) {
        /* a task handed back by a stopping worker starts again elsewhere, same
         * attempt: that start must not be dropped as a duplicate of the first */
        size_t used = strlen(msg_id);
        snprintf(msg_id + used, sizeof msg_id - used, ".%s", s->r->w->cfg.id);
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = PUB_WAIT_MS;
    natsStatus st = js_Publish(&pa, s->r->w->nats.js, subject, text, (int)strlen(text), &po, &jerr);
    jsPubAck_Destroy(pa);
    if (st != NATS_OK)
        return we_err_set(err, WE_EIO, "publish to %s: %s (code %d)", subject,
                          natsStatus_GetText(st), (int)jerr);
    return 0;
}

/* Publishes the event until JetStream has it (true), or give_up (false). */
static bool publish_event(wk_slot *s, const char *event, json_t *result, const wk_task_error *e)
{
    char *text = wk_event_json(&s->task, s->r->w->cfg.id, event, we_now_ms(), result, e);
    bool ok = false;
    WE_ASSERT(text); /* only out of memory: abort, as every allocation failure here */
    for (int attempt = 0; !give_up(s); attempt++) {
        we_err err;
        if ((ok = publish_once(s, event, text, &err) == 0))
            break;
        int64_t wait = we_backoff_ms(attempt, 500, 10000);
        we_warn("task event not published; retrying", WE_ERR(err.msg), WE_S("event", event),
                WE_S("task_id", s->task.task_id), WE_I("retry_in_ms", wait));
        nap(s, wait);
    }
    free(text);
    return ok;
}

/* ---- the end of a task ----------------------------------------------------------------- */

static void ack(wk_slot *s, natsMsg *msg)
{
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = ACK_WAIT_MS;
    natsStatus st = NATS_OK;
    for (int i = 0; i < ACK_TRIES; i++) {
        jsErrCode jerr = 0;
        if ((st = natsMsg_AckSync(msg, &o, &jerr)) == NATS_OK)
            return;
        nap(s, 1000);
    }
    /* redelivered after AckWait; the kernel drops the duplicate events */
    we_warn("dispatch message not acknowledged", WE_ERR(natsStatus_GetText(st)),
            WE_S("task_id", s->task.task_id));
}

/* Whether msg belongs to the WEBENCODE_WORK that exists now. When
 * nats-server lost its store (runbook "NATS Cluster Failure") the kernel
 * creates the stream again and its sequence numbers restart at 1: an ack or
 * a nak of a message of the old stream would land on an unrelated new
 * message with the same sequence — an ack removing it from the work queue
 * unprocessed. A message stored before the stream was created is from the
 * old one. When the stream cannot be asked, assume the current one. */
static bool from_current_stream(wk_slot *s, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    jsStreamInfo *si = NULL;
    bool current = true;
    if (s->r->w->nats.js && natsMsg_GetMetaData(&meta, msg) == NATS_OK &&
        js_GetStreamInfo(&si, s->r->w->nats.js, meta->Stream, NULL, NULL) == NATS_OK)
        current = meta->Timestamp >= si->Created;
    jsMsgMetaData_Destroy(meta);
    jsStreamInfo_Destroy(si);
    return current;
}

static void finish(wk_slot *s, bool acked)
{
    pthread_mutex_lock(&s->r->mu);
    natsMsg *msg = s->msg;
    s->msg = NULL;
    pthread_mutex_unlock(&s->r->mu);
    if (!from_current_stream(s, msg))
        we_warn("dispatch message not answered: its work stream no longer exists",
                WE_S("task_id", s->task.task_id), WE_B("completed", acked));
    else if (acked)
        ack(s, msg);
    else
        natsMsg_Nak(msg, NULL);
    natsMsg_Destroy(msg);
    wk_task_fini(&s->task);
    pthread_mutex_lock(&s->r->mu);
    s->done = true;
    pthread_cond_broadcast(&s->r->cv);
    pthread_mutex_unlock(&s->r->mu);
}

/* Acks unless the worker is stopping: then another worker should take it. */
static bool ended_without_event(wk_slot *s)
{
    wk_stop why = stop_reason(s);
    wk_metrics_task_end((int)(s - s->r->slots), WK_RESULT_CANCELLED);
    we_info("task cancelled", WE_S("task_id", s->task.task_id), WE_S("job_id", s->task.job_id),
            WE_I("attempt", s->task.attempt),
            WE_S("reason", why == WK_STOP_SHUTDOWN ? "worker stopping" : "job cancelled"));
    return why != WK_STOP_SHUTDOWN;
}

static void log_end(wk_slot *s, wk_outcome out, const wk_task_error *e, int64_t ms)
{
    if (out == WK_OUT_COMPLETED)
        we_info("task completed", WE_S("task_id", s->task.task_id), WE_S("job_id", s->task.job_id),
                WE_I("attempt", s->task.attempt), WE_S("type", s->task.type_name),
                WE_I("elapsed_ms", ms));
    else
        we_warn("task failed", WE_S("task_id", s->task.task_id), WE_S("job_id", s->task.job_id),
                WE_I("attempt", s->task.attempt), WE_S("type", s->task.type_name),
                WE_S("code", e->code), WE_ERR(e->message), WE_B("retryable", e->retryable),
                WE_I("elapsed_ms", ms));
}

/* Runs the task after "started"; true when the message should be acked. */
static bool run_task(wk_slot *s, int64_t t0)
{
    json_t *result = NULL;
    wk_task_error e;
    wk_exec x = {.host = s->r->w->plugins,
                 .task = &s->task,
                 .cancel = &s->cancel,
                 .progress = on_progress,
                 .progress_arg = s};
    wk_outcome out = wk_exec_run(&x, &result, &e);
    if (out == WK_OUT_CANCELLED)
        return ended_without_event(s);
    log_end(s, out, &e, we_now_mono_ms() - t0);
    wk_metrics_task_end((int)(s - s->r->slots),
                        out == WK_OUT_COMPLETED ? WK_RESULT_COMPLETED : WK_RESULT_FAILED);
    bool ok = out == WK_OUT_COMPLETED ? publish_event(s, "completed", result, NULL)
                                      : publish_event(s, "failed", NULL, &e);
    json_decref(result);
    /* not published: cancelled (ack, as without an event) or stopping (nak) */
    return ok || stop_reason(s) == WK_STOP_CANCEL;
}

void *wk_slot_main(void *arg)
{
    wk_slot *s = arg;
    int64_t t0 = we_now_mono_ms();
    we_info("task started", WE_S("task_id", s->task.task_id), WE_S("job_id", s->task.job_id),
            WE_I("attempt", s->task.attempt), WE_S("type", s->task.type_name),
            WE_S("worker_id", s->r->w->cfg.id));
    bool acked = publish_event(s, "started", NULL, NULL) ? run_task(s, t0) : ended_without_event(s);
    finish(s, acked);
    return NULL;
}
