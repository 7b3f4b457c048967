/*
 * Internals shared by the /v1/jobs files: api_jobs.c (create, cancel, retry,
 * delete), api_jobs_read.c (get, list, tasks, logs, outputs), api_jobs_spec.c
 * (the request body), api_jobs_source.c (the source URL policy) and
 * api_jobs_query.c (query parameters, cursors). Not for other kernel files.
 */
#ifndef KN_API_JOBS_H
#define KN_API_JOBS_H

#include "http.h"

#include <jansson.h>
#include <stdbool.h>

/* Error codes of the WE-JOB family used by the API. */
#define KN_JOB_NOT_FOUND "WE-JOB-001" /* 404: no such job (or a malformed id) */
#define KN_JOB_INVALID "WE-JOB-002"   /* 422: a body field, or the source refused */
#define KN_JOB_PROFILE "WE-JOB-003"   /* 422: a profile that does not exist */
#define KN_JOB_BAD_PARAM "WE-JOB-004" /* 400: a query parameter or header */
#define KN_JOB_TERMINAL "WE-JOB-005"  /* 409: the job already finished */

/* What a new job is made of: from a POST body or from the job it retries.
 * JSON members are borrowed from `doc`, which the spec owns. */
typedef struct kn_job_spec {
    json_t *doc;
    const char *source_url;
    char *source_canon; /* heap: the URL stored (file:// canonicalized) */
    json_t *profiles;   /* array of strings, 1..16, no duplicates */
    json_int_t priority;
    json_t *metadata;        /* object, or NULL for {} */
    json_t *publish_targets; /* array of objects, or NULL for [] */
    json_t *webhook_urls;    /* array of http(s) URLs, or NULL for [] */
    const char *capability;  /* the probe task's, "cpu" unless overridden */
    const char *idem_key;    /* Idempotency-Key, or NULL */
    const char *retry_of;    /* the job retried, or NULL */
    const char *user_id;     /* the caller's user id ("" or NULL: none) */
} kn_job_spec;

/* Takes doc (a POST body) and validates it into s. On failure returns -1
 * with the offending field in field[] (comma-separated names for unknown
 * fields) and one sentence in err; s is then still to be finied. */
int kn_job_spec_parse(json_t *doc, kn_job_spec *s, char field[128], we_err *err);
void kn_job_spec_fini(kn_job_spec *s);

/* The source URL policy (DESIGN §6 "Addressing media", §8): fs://<key>,
 * s3://<bucket>/<key> when a storage plugin serves s3, file:///abs under
 * SOURCE_ALLOW_DIRS, http(s):// to public addresses unless
 * SOURCE_ALLOW_PRIVATE=true. Returns 0 with *canon (heap) the URL to store,
 * or WE_EINVAL with the reason in err. May block on DNS. */
int kn_job_source_check(kn_ctx *kn, const char *url, char **canon, we_err *err);

/* 8-4-4-4-12 hex: ids that are not UUIDs are 404s, never SQL errors. */
bool kn_job_id_valid(const char *s);
/* RFC 3339 date-time with a zone ("2026-11-28T20:00:00Z", "...+01:00"). */
bool kn_job_time_valid(const char *s);
/* The list cursor: base64url of "<created_at>|<id>". Encode into out (heap);
 * decode into ts[40] and id[37], returning false for anything else. */
char *kn_job_cursor_encode(const char *created_at, const char *id);
bool kn_job_cursor_decode(const char *cursor, char ts[40], char id[37]);
/* A decimal integer query parameter in [min, max]; def when absent. */
bool kn_job_query_int(kn_req *r, const char *name, long long def, long long min, long long max,
                      long long *out);

/* The job as the API shows it (one query), or *out NULL when there is none.
 * A new reference. */
int kn_job_fetch(PGconn *c, const char *id, json_t **out, we_err *err);

/* Replies. */
enum MHD_Result kn_job_not_found(kn_req *r);
enum MHD_Result kn_job_invalid(kn_req *r, const char *field, const char *message);
enum MHD_Result kn_job_bad_param(kn_req *r, const char *name, const char *message);

#endif
