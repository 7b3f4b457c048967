/*
 * GET /v1/events: Server-Sent Events relayed from ui.events.> and
 * live.telemetry.> (DESIGN §5), filtered per client.
 */
#ifndef KN_SSE_H
#define KN_SSE_H

#include "http.h"

#include <jansson.h>

#define KN_SSE_MAX_TYPES 16

/* What one client asked for (?job_id=, ?stream_id=, ?worker_id=, ?types=).
 * Empty strings / ntypes 0: no constraint. Every constraint must hold.
 * Kept small: every open stream holds one. */
typedef struct kn_sse_filter {
    char job_id[37];
    char stream_id[37];
    char worker_id[65];
    int ntypes;
    /* ntypes NUL-terminated entries back to back: "job.completed", or a
     * prefix ending in '*' */
    char types[192];
} kn_sse_filter;

/* The i-th entry of f->types (0 <= i < f->ntypes). */
const char *kn_sse_filter_type(const kn_sse_filter *f, int i);

/* The parts of an event envelope that filters look at; strings are borrowed
 * from the envelope (NULL when absent). */
typedef struct kn_sse_meta {
    const char *type;
    const char *resource_type;
    const char *resource_id;
    const char *job_id;    /* data.job_id */
    const char *stream_id; /* data.stream_id */
    const char *worker_id; /* data.worker_id */
} kn_sse_meta;

/* Fills *f from the four query values (each may be NULL). Returns 0, or -1
 * with *bad naming the parameter and why[] saying what is wrong with it. */
int kn_sse_filter_parse(const char *job_id, const char *stream_id, const char *worker_id,
                        const char *types, kn_sse_filter *f, const char **bad, char *why,
                        size_t why_len);

/* Reads the fields filters use from an envelope (borrowed). */
void kn_sse_meta_of(json_t *ev, kn_sse_meta *m);

/* Whether an event with meta m passes filter f. */
bool kn_sse_filter_match(const kn_sse_filter *f, const kn_sse_meta *m);

/* Formats envelope ev as one SSE message: "id: …\nevent: …\ndata: <JSON on
 * one line>\n\n" (malloc'd, length in *len), or NULL when its id or type is
 * missing or could break the framing. raw (may be NULL) is the JSON text ev
 * was parsed from: used as it is unless it spans lines, else ev is dumped. */
char *kn_sse_format(json_t *ev, const char *raw, size_t raw_len, size_t *len);

/* Starts the relay (a thread that subscribes once NATS is connected and
 * sends keepalives). Call once, after the HTTP server started. */
void kn_sse_start(kn_ctx *kn);

/* Ends every open event stream, refuses new ones, and stops the relay
 * thread and its subscriptions (http.c calls it when the kernel stops, so
 * the graceful wait for requests in flight does not wait on them; it must
 * run before the NATS connection closes). Idempotent. */
void kn_sse_close_all(void);

/* Open event streams on this kernel (for metrics). */
int kn_sse_clients(void);

#endif
