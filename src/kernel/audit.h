/*
 * The audit trail (DESIGN §9): every state-changing API request and system
 * event, with who, what, on which resource, the result and the client IP.
 *
 * A record is written to audit_log first (the queryable copy, and the
 * outbox), then published to JetStream `audit.<resource_type>.<verb>` in
 * the 90-day WEBENCODE_EVENTS stream with Nats-Msg-Id = the record's id.
 * See audit.c for the threads and what happens when a dependency is down.
 */
#ifndef KN_AUDIT_H
#define KN_AUDIT_H

#include "http.h"

#include <jansson.h>

/* SQL: a timestamp column as RFC 3339 UTC with milliseconds. */
#define KN_AUDIT_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* SQL: the audit_log row alias a (a string literal) as the JSON document
 * that is published to audit.> and returned by GET /v1/audit. */
#define KN_AUDIT_JSON(a)                                                                           \
    "json_build_object('id', " a ".id, 'created_at', " KN_AUDIT_TS(a ".created_at") ","            \
    " 'user_id', " a ".user_id, 'actor', " a ".actor, 'action', " a ".action,"                    \
    " 'resource_type', " a ".resource_type, 'resource_id', " a ".resource_id,"                    \
    " 'result', " a ".result, 'client_ip', host(" a ".client_ip),"                                \
    " 'user_agent', " a ".user_agent, 'request_id', " a ".request_id, 'details', " a ".details)"

/* Records a finished request (http.c calls it for every routed request
 * whose method is not GET/HEAD, refused ones included). Runs on the MHD
 * thread after the response was sent; never blocks on NATS. */
void kn_audit_request(kn_req *r);

/* Records a system event (actor "system"): action such as "worker.joined",
 * "worker.lost", "plugin.failed", "plugin.disabled"; details is stolen
 * (NULL: {}). Any thread; never blocks on the database or NATS (the record
 * is queued for the audit thread). */
void kn_audit_system(kn_ctx *kn, const char *action, const char *resource_type,
                     const char *resource_id, json_t *details);

/* Called by the heartbeat handler (workers.c) with the worker's previous
 * status (NULL: never seen) and whether its last heartbeat was recent:
 * records worker.joined (new, returning from offline, or back after a
 * silence, also announced as a worker.joined event) and worker.left (an
 * offline heartbeat). Silent workers are found by the audit thread
 * (worker.lost, also announced). */
void kn_audit_worker_seen(kn_ctx *kn, const char *id, const char *hostname, bool offline,
                          const char *prev, bool fresh);

/* Starts / stops the audit thread (publisher, sweeper, lost-worker
 * detector). Stop after the HTTP server stopped: it writes what is queued. */
void kn_audit_start(kn_ctx *kn);
void kn_audit_stop(void);

/* ---- pure helpers, exposed for unit tests --------------------------------- */

/* The action of a route, "<resource_type>.<verb>": the first path segment
 * after /v1 in the singular is the type; the verb is the last literal
 * segment (POST /v1/jobs/{id}/cancel -> job.cancel) or, for a collection or
 * item, the method's (POST create, PUT/PATCH update, DELETE delete); a
 * nested collection joins both (POST /v1/streams/{id}/destinations ->
 * stream.destination_create). '-' becomes '_'. Returns false (nothing to
 * audit) for GET/HEAD/OPTIONS and patterns outside /v1. type gets the
 * resource type alone. */
bool kn_audit_action(const char *method, const char *pattern, char *action, size_t action_len,
                     char *type, size_t type_len);

/* "success" (< 400), "denied" (401, 403) or "failure" (anything else,
 * including 0: no response was sent). */
const char *kn_audit_result(int status);

/* Appends one CSV cell (RFC 4180: quoted when it holds a comma, quote, CR
 * or LF, quotes doubled). A cell that a spreadsheet would take for a
 * formula (first character = + - @, TAB or CR) is prefixed with '. NULL is
 * an empty cell. */
void kn_csv_cell(we_buf *b, const char *s);

#endif
