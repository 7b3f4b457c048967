/*
 * auth-oidc internals shared by the plugin's files (not a public header).
 *
 * Pure parts — the compact-JWT reader (jwt.c), claim checks, role mapping,
 * UUIDs and times (claims.c) — use only the SDK's pure helpers
 * (webencode/base64.h, webencode/authz.h) and no network, and are
 * unit-tested by including their .c files from tests/unit/test_auth_oidc.c.
 * Roles and the auth.authorize table are the SDK's, shared with auth-basic.
 *
 * Error codes of this plugin (data.we_code):
 *   WE-AUTH-001  invalid credentials: not a JWT, an algorithm other than
 *                RS256/PS256/ES256/ES384, bad signature, unknown key id,
 *                wrong issuer or audience, not yet valid (nbf), no usable
 *                role or subject, disabled user (one message for all; the
 *                reason goes to the log, never the token)
 *   WE-AUTH-002  the token has expired (exp + leeway_s < now)
 *   WE-AUTH-500  database error (not retryable)
 *   WE-AUTH-503  the identity provider (no keys to check the token with)
 *                or the database is unreachable (retryable)
 * Bad input is -32602 naming the field.
 */
#ifndef AUTH_OIDC_AO_H
#define AUTH_OIDC_AO_H

#include <webencode/authz.h>
#include <webencode/plugin.h>

#include <cjose/cjose.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- jwt.c (pure): the compact serialization, read before any key ---------- */

#define AO_TOKEN_MAX 16384 /* bytes of a compact JWT; longer is refused */
#define AO_KID_MAX 256

typedef enum ao_alg {
    AO_ALG_RS256,
    AO_ALG_PS256,
    AO_ALG_ES256,
    AO_ALG_ES384,
    AO_ALG_COUNT,
} ao_alg;

/* A parsed, not yet verified, JWT. The header and claims are checked to be
 * JSON objects without duplicate members; nothing in them is trusted until
 * a key has verified the signature over the same text. */
typedef struct ao_jwt {
    const char *compact; /* borrowed: the token text */
    size_t len;
    json_t *header; /* owned */
    json_t *claims; /* owned */
    ao_alg alg;
    const char *kid; /* in header; NULL when absent */
} ao_jwt;

/* Reads token (len bytes): three base64url segments, header and claims JSON
 * objects, an accepted alg, a typ of JWT / at+jwt when present, no crit, a
 * signature of the alg's size. 0, or -1 with *why (a static sentence for the
 * log) and nothing to free. Never touches the network. */
int ao_jwt_parse(const char *token, size_t len, ao_jwt *out, const char **why);
void ao_jwt_fini(ao_jwt *j);
const char *ao_alg_name(ao_alg alg);

/* ---- claims.c (pure): what a verified token says ------------------------- */

typedef struct ao_role_rule {
    char *value; /* a claim value, e.g. "webencode-admins" */
    we_role role;
} ao_role_rule;

/* The rules claims are checked against; built at init, read-only after. */
typedef struct ao_rules {
    char *issuer;   /* iss must equal it exactly */
    char *audience; /* aud (a string or an array) must contain it */
    char *role_claim;
    char *username_claim;
    ao_role_rule *role_map;
    size_t n_role_map;
    we_role default_role; /* WE_ROLE_INVALID: a token without a known role is refused */
    int64_t leeway_s;
} ao_rules;

typedef enum ao_verdict {
    AO_OK = 0,
    AO_INVALID = -1, /* WE-AUTH-001 */
    AO_EXPIRED = -2, /* WE-AUTH-002 */
} ao_verdict;

#define AO_USERNAME_PREFIX "oidc:"
#define AO_USERNAME_MAX 128 /* users.username's limit, prefix included */

/* Who a token names: strings point into the claims object (borrowed). */
typedef struct ao_identity {
    const char *sub;
    char username[AO_USERNAME_MAX + 1]; /* "oidc:" + the username claim (or sub) */
    we_role role;
    int64_t exp;
    const char *jti; /* NULL when absent */
} ao_identity;

/* A claim by name: the member named path if there is one (Auth0's
 * "https://example.com/roles"), else the dotted path through nested objects
 * ("realm_access.roles"). NULL when absent. Borrowed. */
json_t *ao_claim_get(json_t *claims, const char *path);
/* The highest role a claim value (a string or an array of strings) maps to
 * through role_map, then through the role names themselves; unknown values
 * are ignored. WE_ROLE_INVALID when none. */
we_role ao_role_of(const ao_rules *r, json_t *value);
/* Parses role_map text "value=role,value=role" (spaces around items
 * ignored; empty text: no rules). 0, or -1 with err naming the item. */
int ao_role_map_parse(const char *text, ao_role_rule **out, size_t *n, char *err, size_t err_len);
void ao_role_map_free(ao_role_rule *map, size_t n);
/* iss without verification: whether claims say they come from r->issuer. */
bool ao_claims_from_issuer(const ao_rules *r, json_t *claims);
/* Checks verified claims at time now (Unix seconds): iss, aud, nbf and iat
 * (with leeway: a token not yet valid is AO_INVALID), exp (AO_EXPIRED), sub,
 * role, username. Fills *id on AO_OK; *why gets a static sentence otherwise. */
ao_verdict ao_claims_check(const ao_rules *r, json_t *claims, int64_t now, ao_identity *id,
                           const char **why);
/* Name-based UUID (RFC 4122 version 5, SHA-1, URL namespace) of
 * "<iss>#<sub>": the stable user id when no database is configured. */
void ao_user_uuid(const char *iss, const char *sub, char out[37]);
/* RFC 3339 UTC text of Unix time t ("2026-11-28T20:00:00Z"). */
void ao_rfc3339(int64_t t, char out[32]);
void ao_rules_fini(ao_rules *r);

/* ---- http.c: discovery and JWKS documents over libcurl -------------------- */

/* Whether url may be fetched: https, or http to a loopback host (127.0.0.0/8,
 * ::1, localhost), or any http when allow_insecure. why gets the reason. */
bool ao_url_allowed(const char *url, bool allow_insecure, char *why, size_t why_len);
/* GET url (no redirects, at most max_bytes, timeout_ms in all): 0 with a
 * NUL-terminated *body (free()), or -1 with err. Gives up within about a
 * second once *cancel (may be NULL) turns true. Thread-safe. */
int ao_http_get(const char *url, long timeout_ms, size_t max_bytes, const atomic_bool *cancel,
                char **body, size_t *len, char *err, size_t err_len);

/* ---- jwks.c: key sets ----------------------------------------------------- */

#define AO_JWKS_MAX_BYTES (512 * 1024)
#define AO_JWKS_MAX_KEYS 64

typedef struct ao_key {
    cjose_jwk_t *jwk;
    char *kid; /* NULL when the JWK has none */
    char *alg; /* the JWK's "alg", NULL when absent */
    cjose_jwk_kty_t kty;
    cjose_jwk_ec_curve crv; /* EC keys only */
} ao_key;

/* An immutable set of verification keys, shared by reference between the
 * calls that use it and the provider that replaces it. */
typedef struct ao_keyset {
    atomic_int refs;
    size_t n;
    ao_key keys[];
} ao_keyset;

/* Builds a key set from a JWKS document: RSA (2048 bits or more) and EC
 * (P-256, P-384) signature keys; others are skipped. 0 with *out (one
 * reference), or -1 with why when the document is malformed or holds no
 * usable key. */
int ao_keyset_parse(const char *text, size_t len, ao_keyset **out, char *why, size_t why_len);
ao_keyset *ao_keyset_ref(ao_keyset *ks);
void ao_keyset_unref(ao_keyset *ks);
/* Keys that fit a token's alg and kid (kid NULL: every key that fits the
 * alg), at most cap of them into out. Returns how many. */
size_t ao_keyset_match(const ao_keyset *ks, ao_alg alg, const char *kid, const ao_key **out,
                       size_t cap);
/* Verifies the token's signature with each of n keys in turn: true when one
 * holds; why gets cjose's reason otherwise. Thread-safe (keys are only
 * read). */
bool ao_keys_verify(const ao_key *const *keys, size_t n, const ao_jwt *jwt, char *why,
                    size_t why_len);

/* ---- provider.c: discovery, the JWKS cache and its refresher --------------- */

typedef struct ao_provider_cfg {
    const char *issuer;
    bool allow_insecure;
    long timeout_ms;
    int64_t min_refresh_ms; /* an unknown kid refetches at most this often */
    int64_t refresh_ms;     /* the background refresh period */
} ao_provider_cfg;

typedef struct ao_provider {
    char *issuer, *discovery_url;
    bool allow_insecure;
    long timeout_ms;
    int64_t min_refresh_ms, refresh_ms;
    pthread_mutex_t mu;       /* guards keys and jwks_uri */
    ao_keyset *keys;          /* NULL until the first JWKS arrives */
    char *jwks_uri;           /* NULL until discovery succeeds */
    pthread_mutex_t fetch_mu; /* one fetch at a time; guards last_fetch_ms */
    int64_t last_fetch_ms;    /* monotonic start of the last attempt, 0: none */
    atomic_bool up;           /* the last fetch succeeded */
    atomic_bool ready;        /* a key set has arrived */
    pthread_t monitor;
    bool monitor_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    atomic_bool cancel; /* set at fini: a fetch in flight gives up */
} ao_provider;

typedef enum ao_refetch {
    AO_REFETCH_NEW_KEYS, /* the key set changed: look again */
    AO_REFETCH_LIMITED,  /* fetched less than min_refresh_ms ago: no fetch */
    AO_REFETCH_FAILED,   /* the provider could not be reached */
} ao_refetch;

/* Starts the refresher thread (first discovery and JWKS at once); a provider
 * that is down does not fail init. */
int ao_provider_init(ao_provider *p, const ao_provider_cfg *cfg, char *err, size_t err_len);
void ao_provider_fini(ao_provider *p);
/* The current key set (a new reference; ao_keyset_unref it) or NULL. */
ao_keyset *ao_provider_keys(ao_provider *p);
/* For a token whose key is not in seen (the set the caller looked in):
 * fetches the JWKS again unless another call just did or the rate limit
 * says no. Blocks while another fetch runs. */
ao_refetch ao_provider_refetch(ao_provider *p, const ao_keyset *seen);
int64_t ao_mono_ms(void);

/* ---- db.c: the optional users row ---------------------------------------- */

typedef struct ao_db {
    pthread_mutex_t mu; /* guards conn: libpq allows one thread per PGconn */
    PGconn *conn;
    char *url; /* secret: never logged; NULL when no database is configured */
    atomic_bool up;
} ao_db;

int ao_db_init(ao_db *db, const char *url, char *err, size_t err_len);
void ao_db_fini(ao_db *db);
enum { AO_DB_REFUSED = 1 };

/* Upserts the users row of id (username, role; last_login_at at most once a
 * minute) and copies its id into user_id. 0; AO_DB_REFUSED when the row is
 * disabled or belongs to a password user (logged); or -1 after failing the
 * call (WE-AUTH-503 / WE-AUTH-500). */
int ao_db_user(ao_db *db, we_plugin_call *call, const ao_identity *id, char user_id[37]);

/* ---- config.c / main state ----------------------------------------------- */

typedef struct ao_state {
    ao_rules rules;
    ao_provider provider;
    ao_db db;
} ao_state;

int ao_init(json_t *config, void **state, char *err, size_t err_len);
void ao_fini(void *state);
bool ao_health(void *state, const char **detail);

/* ---- methods (m_authn.c) ------------------------------------------------- */

int ao_m_authenticate(we_plugin_call *call, json_t *params, json_t **result);
int ao_m_authorize(we_plugin_call *call, json_t *params, json_t **result);

#endif
