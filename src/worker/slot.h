/*
 * The runner's state, shared by runner.c (the runner thread and the
 * jobs.cancel callback on a libnats thread) and slot.c (one thread per
 * task). Fields marked (mu) are guarded by wk_runner.mu; the rest belong to
 * the thread named beside them.
 */
#ifndef WK_SLOT_H
#define WK_SLOT_H

#include "consumer.h"
#include "runner.h"
#include "task.h"

#include <pthread.h>
#include <stdatomic.h>

typedef enum wk_stop {
    WK_STOP_NONE = 0,
    WK_STOP_CANCEL,   /* jobs.cancel: end without an event, ack */
    WK_STOP_SHUTDOWN, /* the stop grace is over: end without an event, nak */
} wk_stop;

typedef struct wk_slot {
    struct wk_runner *r;
    pthread_t thread;          /* runner thread: joined once done */
    bool busy;                 /* (mu) holds a task whose thread has not been joined */
    bool done;                 /* (mu) the task thread is finished with the slot */
    natsMsg *msg;              /* (mu) the dispatch message, until acked or nak'ed */
    natsSubscription *sub;     /* (mu) the subscription msg came from */
    wk_task task;              /* written before the thread starts, read-only after */
    atomic_bool cancel;        /* the encoder call's cancel flag */
    wk_stop stop;              /* (mu) why cancel was set */
    int64_t keepalive_ms;      /* InProgress interval, fixed at start */
    int64_t in_progress_at_ms; /* (mu) next InProgress */
    wk_progress progress;      /* (mu) the encoder's latest */
    int64_t progress_sent_ms;  /* (mu) last progress published */
} wk_slot;

struct wk_runner {
    wk_worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a task finished, the runner finished (CLOCK_MONOTONIC) */
    wk_slot *slots;    /* w->cfg.slots of them */
    int nslots;
    wk_consumer *cons;          /* one per capability */
    size_t ncons, next;         /* next: round robin over the consumers */
    natsSubscription **retired; /* lost consumers' subscriptions still held by tasks */
    size_t nretired;
    natsSubscription *cancel_sub;
    pthread_t thread;
    bool started;       /* the runner thread exists */
    bool finished;      /* (mu) the runner thread is done */
    bool aborting;      /* (mu) the stop grace is over: tasks stop retrying */
    int64_t stop_at_ms; /* runner thread: when the grace ends; 0 before a stop */
    bool idle;          /* runner thread: "not taking tasks" logged */
};

/* The task thread (slot.c): runs s->task, reports it, acks or naks s->msg,
 * then sets s->done and signals r->cv. */
void *wk_slot_main(void *arg);

/* Publishes p as s's progress on jobs.progress.<job_id> (lossy, core NATS). */
void wk_slot_publish_progress(wk_slot *s, const wk_progress *p);

/* Waits on r->cv up to ms; the caller holds r->mu. */
void wk_runner_cond_wait(wk_runner *r, int64_t ms);

#endif
