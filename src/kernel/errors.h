/*
 * Error tracking: the kernel's error-level log records and failed jobs,
 * grouped in error_events by fingerprint (source + message + error code),
 * with a count, first/last seen and the latest occurrence's context.
 * GET /v1/errors reads them (api_errors.c); webencode_errors_total is
 * sum(count).
 */
#ifndef KN_ERRORS_H
#define KN_ERRORS_H

#include "kernel.h"

#include <jansson.h>

/* Installs the log sink and starts the thread that writes error_events;
 * stop removes the sink, then writes what is queued (one attempt). */
void kn_errors_start(kn_ctx *kn);
void kn_errors_stop(void);

/* Records one occurrence (any thread; queued, never blocks on the
 * database). severity: warning|error|critical|fatal; code (may be NULL) is
 * part of the fingerprint; context is stolen (NULL: {}); request_id and
 * job_id may be NULL. */
void kn_errors_record(const char *source, const char *severity, const char *message,
                      const char *code, json_t *context, const char *request_id,
                      const char *job_id);

/* ---- pure helpers, exposed for unit tests --------------------------------- */

/* One occurrence, parsed from a log line. Strings are owned (free with
 * kn_error_occ_fini). */
typedef struct kn_error_occ {
    char *source;   /* "kernel", "plugin:<id>", or a caller's */
    char *severity; /* error | fatal | … */
    char *message;
    char *code; /* or NULL */
    char *request_id, *job_id, *time; /* or NULL */
    json_t *context;                 /* the other fields, secrets removed */
    char fingerprint[65];            /* hex SHA-256 of source, message, code */
} kn_error_occ;

/* Parses a JSON log line (as we_log writes it). source_override (may be
 * NULL or "") wins over the one derived from the line. Returns false for
 * text that is not a JSON object with a msg. */
bool kn_error_occ_parse(const char *line, size_t len, const char *source_override,
                        kn_error_occ *o);
void kn_error_occ_fini(kn_error_occ *o);

/* Whether a context field named key may hold a secret (token, password,
 * secret, authorization, cookie, key, credential, body): never recorded. */
bool kn_error_key_secret(const char *key);

#endif
