/*
 * A task as the worker sees it (docs/pipeline.md §2–3): the dispatch message
 * parsed and checked, and the messages the worker sends about it — the
 * lifecycle events on jobs.events.<job_id>, the progress on
 * jobs.progress.<job_id> — and the cancel broadcast it obeys. Pure
 * functions over caller-owned data: any thread.
 */
#ifndef WK_TASK_H
#define WK_TASK_H

#include "config.h"
#include "we_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum wk_task_type {
    WK_TASK_UNKNOWN = 0, /* a type this worker does not run: it fails the task */
    WK_TASK_PROBE,
    WK_TASK_VIDEO,
    WK_TASK_AUDIO,
    WK_TASK_STITCH,
    WK_TASK_PACKAGE,
} wk_task_type;

#define WK_TASK_LEASE_S 60 /* lease_s when the message has none */

typedef struct wk_task {
    char task_id[WK_ID_MAX + 1]; /* ids are NATS subject tokens: [A-Za-z0-9_-]{1,64} */
    char job_id[WK_ID_MAX + 1];
    int attempt; /* >= 1 */
    int lease_s; /* > 0 */
    wk_task_type type;
    char type_name[32]; /* as sent (cut), for logs */
    json_t *params;     /* owned; an object */
} wk_task;

/* Why a task failed, as its failed event says. */
typedef struct wk_task_error {
    char code[32]; /* "WE-JOB-010", … */
    char message[512];
    bool retryable;
} wk_task_error;

/* Parses a dispatch message into t (t->params owned: wk_task_fini). WE_EINVAL
 * with the reason when it is not a JSON object with a valid task_id, job_id,
 * attempt (>= 1), type (a string), params (an object) and optional lease_s
 * (> 0): such a message names no task anyone could be told about. An
 * unknown type parses (WK_TASK_UNKNOWN); wk_task_check refuses it. */
int wk_task_parse(const char *data, size_t len, wk_task *t, we_err *err);
void wk_task_fini(wk_task *t);

/* Whether t's params have the shape of its type (pipeline.md §2); WE_EINVAL
 * naming the field otherwise. */
int wk_task_check(const wk_task *t, we_err *err);

/* "jobs.events.<job_id>" / "jobs.progress.<job_id>" into buf. */
void wk_task_subject(const wk_task *t, const char *kind, char *buf, size_t n);
/* The event's Nats-Msg-Id "<task_id>.<attempt>.<event>" into buf. */
void wk_task_msg_id(const wk_task *t, const char *event, char *buf, size_t n);

/* The event JSON (free() it): event "started", "completed" with result
 * (borrowed), or "failed" with e; ts from epoch_ms. NULL when out of memory. */
char *wk_event_json(const wk_task *t, const char *worker_id, const char *event, int64_t epoch_ms,
                    json_t *result, const wk_task_error *e);

typedef struct wk_progress {
    double percent;   /* 0..100 */
    double encoded_s; /* output seconds written so far */
    double speed;     /* x realtime */
} wk_progress;

/* The progress JSON (free() it), or NULL when out of memory. */
char *wk_progress_json(const wk_task *t, const char *worker_id, const wk_progress *p);

/* Replaces every byte of s that does not start a well-formed UTF-8 sequence
 * with '?' (a message cut to fit a buffer may end inside a character). */
void wk_utf8_fix(char *s);

/* The job id of a jobs.cancel message {"job_id": …} into job_id; WE_EINVAL
 * with the reason when it is not one. */
int wk_cancel_parse(const char *data, size_t len, char job_id[WK_ID_MAX + 1], we_err *err);

#endif
