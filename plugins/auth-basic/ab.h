/*
 * auth-basic internals shared by the plugin's files (not a public header).
 *
 * Pure parts — password hashing (hash.c) and input rules (policy.c) — use
 * only the SDK's pure helpers (webencode/base64.h, webencode/authz.h) and
 * are unit-tested by including their .c files from tests/unit/test_auth_basic.c.
 * Roles and the auth.authorize table are the SDK's, shared with auth-oidc.
 *
 * Error codes of this plugin (data.we_code):
 *   WE-AUTH-001  invalid credentials: unknown user or token, wrong password,
 *                revoked token, disabled user (one message for all of them)
 *   WE-AUTH-002  the token has expired
 *   WE-AUTH-003  not permitted: a token role above its user's role, a token
 *                for a disabled user
 *   WE-AUTH-004  the user exists already
 *   WE-AUTH-404  no such user or token
 *   WE-AUTH-500  database error (not retryable)
 *   WE-AUTH-503  the database is unreachable (retryable)
 * Bad input is -32602 naming the field.
 */
#ifndef AUTH_BASIC_AB_H
#define AUTH_BASIC_AB_H

#include <webencode/authz.h>
#include <webencode/base64.h>
#include <webencode/plugin.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- hash.c (pure) ------------------------------------------------------ */

/* $scrypt$ln=15,r=8,p=1$<salt>$<key>, base64 without padding. */
#define AB_HASH_MAX 256
#define AB_SALT_LEN 16
#define AB_KEY_LEN 32
#define AB_SCRYPT_R 8
#define AB_SCRYPT_P 1
#define AB_LN_MIN 14 /* accepted for new hashes (hash_cost) */
#define AB_LN_MAX 18
#define AB_LN_DEFAULT 15
/* The most memory one scrypt computation may take; bounds what a stored
 * hash can ask for. */
#define AB_SCRYPT_MAXMEM ((uint64_t)300 << 20)

typedef struct ab_scrypt {
    unsigned ln, r, p;
    uint8_t salt[64], key[64];
    size_t salt_len, key_len;
} ab_scrypt;

/* Hashes a password with a fresh 16-byte salt and N = 2^ln: 0, or -1. */
int ab_hash_password(const char *pw, size_t pw_len, unsigned ln, char out[AB_HASH_MAX]);
/* Same with a given salt (tests). */
int ab_hash_password_salt(const char *pw, size_t pw_len, unsigned ln, const uint8_t *salt,
                          size_t salt_len, char out[AB_HASH_MAX]);
/* 1: the password matches, 0: it does not, -1: stored is malformed (or
 * asks for parameters out of bounds) or hashing failed. Constant time in
 * the comparison. */
int ab_verify_password(const char *pw, size_t pw_len, const char *stored);
/* Parses a stored hash: 0, or -1 when malformed. */
int ab_hash_parse(const char *stored, ab_scrypt *out);
/* True when stored was made with other parameters than ln/r/p now in use. */
bool ab_hash_outdated(const char *stored, unsigned ln);
/* API token hash: SHA-256 as 64 hex digits. */
void ab_token_hash(const char *token, size_t len, char out[65]);

/* ---- policy.c (pure): input rules --------------------------------------- */

bool ab_username_valid(const char *s, size_t len, char *why, size_t why_len);
bool ab_password_valid(const char *s, size_t len, char *why, size_t why_len);
bool ab_uuid_valid(const char *s);
/* token_prefix config: 1..10 of [A-Za-z0-9_]. */
bool ab_token_prefix_valid(const char *s);

/* ---- db.c --------------------------------------------------------------- */

typedef struct ab_db {
    pthread_mutex_t mu; /* guards conn: libpq allows one thread per PGconn */
    PGconn *conn;
    char *url; /* secret: never logged, never in a message */
    atomic_bool up;
    atomic_llong last_ok_ms;
    pthread_t monitor;
    bool monitor_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
} ab_db;

enum { AB_DB_CONFLICT = 1 };

int ab_db_init(ab_db *db, const char *url, char *err, size_t err_len);
void ab_db_fini(ab_db *db);
/* Runs one statement (text params, NULL = SQL NULL): 0 with *res (the
 * caller PQclears it), AB_DB_CONFLICT on a unique violation, or -1 after
 * failing the call (WE-AUTH-503 when the database is unreachable; call
 * may be NULL for best-effort writes that must not fail a call). */
int ab_db_exec(ab_db *db, we_plugin_call *call, const char *sql, int n, const char *const *params,
               PGresult **res);

/* ---- config.c / main state ---------------------------------------------- */

typedef struct ab_state {
    ab_db db;
    unsigned hash_ln;
    char token_prefix[16];
    char dummy_hash[AB_HASH_MAX]; /* verified against for unknown users */
} ab_state;

int ab_init(json_t *config, void **state, char *err, size_t err_len);
void ab_fini(void *state);
bool ab_health(void *state, const char **detail);

/* ---- helpers for methods (m_util.c) ------------------------------------- */

/* RFC 3339 UTC text of a timestamptz column, for SELECT lists. */
#define AB_TS(col) "to_char(" #col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A string param: required or optional (*out NULL when absent). */
int ab_param_str(we_plugin_call *call, json_t *params, const char *field, bool required,
                 const char **out, size_t *len);
int ab_param_uuid(we_plugin_call *call, json_t *params, const char *field, bool required,
                  const char **out);
/* An optional role param: *out WE_ROLE_INVALID when absent. */
int ab_param_role(we_plugin_call *call, json_t *params, const char *field, we_role *out);
/* Column as JSON: a string, or null for SQL NULL. */
json_t *ab_col_str(const PGresult *r, int row, int col);
bool ab_col_bool(const PGresult *r, int row, int col);
int ab_fail_not_found(we_plugin_call *call, const char *what, const char *id);

/* ---- methods ------------------------------------------------------------ */

int ab_m_authenticate(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_authorize(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_user_create(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_user_delete(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_user_list(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_user_set_password(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_user_update(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_token_create(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_token_revoke(we_plugin_call *call, json_t *params, json_t **result);
int ab_m_token_list(we_plugin_call *call, json_t *params, json_t **result);

#endif
