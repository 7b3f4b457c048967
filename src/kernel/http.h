/*
 * The kernel's HTTP layer over libmicrohttpd: request state, routing by a
 * table of (method, pattern, handler), JSON responses and the error envelope
 * of DESIGN §8:
 *   {"error":{"code":"WE-SYS-002","message":…,"details":…,"request_id":…,"timestamp":…}}
 */
#ifndef KN_HTTP_H
#define KN_HTTP_H

#include "kernel.h"
#include "we_buf.h"

#include <jansson.h>
#include <microhttpd.h>

#define KN_MAX_PARAMS 4

/* Roles, in order: each includes the ones below it. KN_ANON is "no token". */
typedef enum kn_role { KN_ANON = 0, KN_VIEWER, KN_OPERATOR, KN_ADMIN } kn_role;

/* "viewer", "operator", "admin" (or "anonymous"), and back (-1: unknown). */
const char *kn_role_name(kn_role role);
int kn_role_parse(const char *s);

/* Who made a request, once auth.c resolved its token. */
typedef struct kn_identity {
    kn_role role;          /* KN_ANON: no (valid) token */
    char user_id[40];      /* the user's UUID; "" for bootstrap and dev tokens */
    char name[136];        /* username, "bootstrap" or "dev:<role>" */
    char via[72];          /* the auth plugin id, "bootstrap" or "dev" */
    char token_id[40];     /* the API token's id when the plugin names one, else "" */
    char limit_key[72];    /* what the rate limiter counts (token hash prefix or IP) */
} kn_identity;

typedef struct kn_req {
    kn_ctx *kn;
    struct MHD_Connection *conn;
    const char *method; /* owned by MHD, valid for the request */
    const char *url;    /* owned by MHD, path without the query string */
    char request_id[40];
    int64_t start_us;
    we_buf body;
    bool too_large;
    int status; /* the status sent, for the access log */
    int nparams;
    char *params[KN_MAX_PARAMS]; /* {name} captures, heap copies */
    const struct kn_route *route; /* the matched route, or NULL */
    kn_identity who;              /* the caller (KN_ANON until auth ran) */
    char client_ip[48];           /* peer address, or X-Forwarded-For from a trusted proxy */
    char resource_id[72];         /* set by handlers that create a resource, for the audit */
    char retry_after[16];         /* Retry-After header value, when set */
    bool www_authenticate;        /* add WWW-Authenticate: Bearer (401 replies) */
    const char *cors_origin;      /* an allowed Origin to echo, or NULL (owned by MHD) */
} kn_req;

typedef enum MHD_Result (*kn_handler)(kn_req *r);

typedef struct kn_route {
    const char *method;
    const char *pattern; /* "/v1/workers/{id}": {x} matches one non-empty segment */
    kn_handler fn;
    kn_role role; /* the least role a caller needs; KN_ANON: no token needed */
} kn_route;

/* The route table (routes.c), ending with a zeroed entry. */
extern const kn_route kn_routes[];

typedef struct kn_http kn_http;

/* Starts serving on cfg bind_addr:port. */
int kn_http_start(kn_ctx *kn, kn_http **out, we_err *err);
/* Stops accepting, waits up to grace_ms for requests in flight, stops. */
void kn_http_stop(kn_http *h, int grace_ms);

/* Replies: each queues the response and returns MHD's result. */
enum MHD_Result kn_reply_json(kn_req *r, unsigned status, json_t *body); /* steals body */
enum MHD_Result kn_reply_text(kn_req *r, unsigned status, const char *content_type,
                              const char *body, size_t len);
/* Queues resp (consumed) with status and the headers every reply carries:
 * Content-Type, X-Request-Id, Cache-Control: no-store, nosniff, and
 * Retry-After, WWW-Authenticate and CORS when the request calls for them.
 * For replies that build their own response (streams, downloads). */
enum MHD_Result kn_reply_response(kn_req *r, unsigned status, struct MHD_Response *resp,
                                  const char *content_type);
/* details may be NULL; stolen otherwise. */
enum MHD_Result kn_reply_error(kn_req *r, unsigned status, const char *code, const char *message,
                               json_t *details);
/* 500 with WE-SYS-001; logs the cause (never sent to the client). */
enum MHD_Result kn_reply_internal(kn_req *r, const char *cause);
/* For a failed database call with code rc: 503 WE-SYS-006 when the database
 * is unreachable (WE_EUNAVAIL, WE_ETIMEOUT), else 500. Logs the cause. */
enum MHD_Result kn_reply_db_error(kn_req *r, int rc, const char *cause);

/* Parses the request body as a JSON object into *out (new reference).
 * Returns 0, or -1 after queuing 415 (WE-SYS-008: not application/json) or
 * 400 (WE-SYS-004: empty, malformed — with line and column — or not an
 * object), with MHD's result in *replied. */
int kn_body_object(kn_req *r, json_t **out, enum MHD_Result *replied);

/* The deepest nesting of arrays and objects in a JSON text (strings
 * skipped), found without parsing it. */
size_t kn_json_depth(const char *data, size_t len);

/* A query-string argument, or NULL. */
const char *kn_query(kn_req *r, const char *name);
/* The value of {name}-th capture (0-based). */
const char *kn_param(kn_req *r, int i);

/* Pure routing, exposed for unit tests: finds the route for method+path.
 * Returns the route, or NULL with *method_mismatch set when the path exists
 * under another method (then allow[] lists the methods, comma-separated). */
const kn_route *kn_route_match(const kn_route *table, const char *method, const char *path,
                               char **params, int *nparams, bool *method_mismatch, char *allow,
                               size_t allow_len);

/* Requests answered by this process with status class klass (1..5). */
uint64_t kn_http_requests(int klass);

/* Builds the error envelope (exposed for unit tests). */
json_t *kn_error_body(const char *code, const char *message, json_t *details,
                      const char *request_id);

#endif
