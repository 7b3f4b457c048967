/*
 * migratelib: the engine behind bin/migrate, a golang-migrate v4 compatible
 * schema migration tool for PostgreSQL.
 *
 * Reading order: a migration directory is loaded into a sorted mig_list
 * (migrate.c); a command is planned into a list of steps against the current
 * version (migrate.c); the steps run against the database (db.c); cli.c parses
 * the command line and fmt.c formats what the user sees. Everything except
 * db.c is pure and unit-tested without a database.
 *
 * Bookkeeping is golang-migrate's: one row in
 * schema_migrations(version bigint not null primary key, dirty boolean not null),
 * no row meaning "no version" (MIG_NIL_VERSION). Each step first commits
 * (target, dirty), then runs the file and records (target, clean) in one
 * transaction, so a failed file is rolled back and leaves only the dirty flag.
 *
 * Ownership: functions named _load/_plan fill caller storage that the matching
 * _fini releases; pointers into a mig_list stay valid until mig_list_fini.
 * Library code returns errors in a we_err and never prints or logs.
 */
#ifndef MIG_MIGRATE_H
#define MIG_MIGRATE_H

#include "we_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* golang-migrate's NilVersion: no migration applied. */
#define MIG_NIL_VERSION (-1)

typedef enum mig_dir { MIG_UP = 0, MIG_DOWN = 1 } mig_dir;

/* ---- migration directory (migrate.c) ------------------------------------ */

/* One version with its two files (names relative to the directory). */
typedef struct mig_migration {
    int64_t version;
    char *name;      /* identifier: "init" in 0001_init.up.sql */
    char *up_file;   /* "0001_init.up.sql" */
    char *down_file; /* "0001_init.down.sql" */
} mig_migration;

typedef struct mig_list {
    char *dir;
    mig_migration *items; /* ascending by version, versions unique */
    size_t n;
} mig_list;

/* Parses one directory entry against golang-migrate's file pattern
 * ^([0-9]+)_(.*)\.(up|down)\.(.*)$. *matched is false (and 0 returned) for
 * names that do not match, which golang-migrate ignores. On a match, *ident
 * gets a heap copy of the identifier (caller frees). WE_EINVAL when the
 * version does not fit a bigint. */
int mig_parse_filename(const char *fname, bool *matched, int64_t *version, char **ident,
                       mig_dir *dir, we_err *err);

/* Loads dir: every matching file, sorted by version. Fails (naming the file)
 * on an unreadable directory, a duplicate version, an up without a down or a
 * down without an up. Caller owns *out; release with mig_list_fini. */
int mig_list_load(mig_list *out, const char *dir, we_err *err);
void mig_list_fini(mig_list *l);

/* Index of version in l, or -1 when absent. */
long mig_list_find(const mig_list *l, int64_t version);

/* Reads the file of m in direction d into *sql (heap, NUL-terminated; caller
 * frees). Fails on I/O errors and on NUL bytes, which PostgreSQL's simple
 * query protocol cannot carry. */
int mig_read_sql(const mig_list *l, const mig_migration *m, mig_dir d, char **sql, we_err *err);

/* ---- planning (migrate.c) ----------------------------------------------- */

/* One step: run m's file in direction dir, moving from version `from` to `to`
 * (to is MIG_NIL_VERSION when the first migration is undone). */
typedef struct mig_step {
    const mig_migration *m;
    mig_dir dir;
    int64_t from;
    int64_t to;
} mig_step;

typedef struct mig_plan {
    mig_step *steps;
    size_t n;
    long short_by; /* steps asked for that do not exist (golang's "limit N short") */
} mig_plan;

/* limit -1 means "all". The current version cur must be MIG_NIL_VERSION or a
 * version of l (else WE_ENOENT: "no migration found for version N"); goto's
 * target must be a version of l. An empty plan with short_by 0 is "no change".
 * Caller owns *out; release with mig_plan_fini. */
int mig_plan_up(const mig_list *l, int64_t cur, long limit, mig_plan *out, we_err *err);
int mig_plan_down(const mig_list *l, int64_t cur, long limit, mig_plan *out, we_err *err);
int mig_plan_goto(const mig_list *l, int64_t cur, int64_t target, mig_plan *out, we_err *err);
void mig_plan_fini(mig_plan *p);

/* ---- database (db.c) ------------------------------------------------------ */

typedef struct mig_db mig_db;

/* Connects with a postgres:// or postgresql:// URL (libpq syntax). The URL
 * never appears in errors. notices: print server NOTICEs to stderr (verbose);
 * otherwise they are dropped, like golang-migrate does. Free with mig_db_free. */
int mig_db_open(mig_db **out, const char *url, bool notices, we_err *err);
void mig_db_free(mig_db *db);

/* golang-migrate's advisory lock key: CRC-32 (IEEE) of
 * "<schema>\0<table>\0<database>" times 1486364155, as uint32. */
uint32_t mig_lock_key(const char *schema, const char *table, const char *database);

/* Session-level pg_advisory_lock on mig_lock_key for this database, waiting
 * up to timeout_s (0: forever); WE_ETIMEOUT when someone else holds it. */
int mig_db_lock(mig_db *db, int timeout_s, we_err *err);
int mig_db_unlock(mig_db *db, we_err *err);

/* CREATE TABLE IF NOT EXISTS schema_migrations (call under the lock). */
int mig_db_ensure_table(mig_db *db, we_err *err);

/* The recorded version (MIG_NIL_VERSION when none or no table) and dirty flag. */
int mig_db_version(mig_db *db, int64_t *version, bool *dirty, we_err *err);

/* Replaces the row in its own transaction (no row for a clean nil version). */
int mig_db_set_version(mig_db *db, int64_t version, bool dirty, we_err *err);

/* Timing of one applied step, for the caller's report. */
typedef struct mig_step_report {
    const mig_step *step;
    int64_t read_ns;
    int64_t run_ns;
} mig_step_report;

typedef void (*mig_step_cb)(const mig_step_report *r, void *ud);

/* Runs the plan's steps in order; stops at the first failure, which leaves
 * the target version dirty and the schema as before that step. The error
 * names the file, PostgreSQL's message and the line when the server gives a
 * position. cb (may be NULL) is called after each applied step. */
int mig_db_run(mig_db *db, const mig_list *l, const mig_plan *p, mig_step_cb cb, void *ud,
               we_err *err);

/* Drops every table, view, sequence, routine and type in the current schema
 * (schema_migrations included), leaving extension-owned objects alone. */
int mig_db_drop(mig_db *db, we_err *err);

/* ---- command line (cli.c) ------------------------------------------------- */

typedef struct mig_opts {
    const char *path;     /* -path DIR, or -source file://DIR; NULL when not given */
    const char *source;   /* -source as given (folded into path by mig_opts_parse) */
    const char *database; /* -database URL; NULL when not given */
    bool verbose;
    bool help;
    bool show_version;  /* -version */
    long lock_timeout_s; /* -lock-timeout, default 15 */
    const char *command; /* first non-flag argument; NULL when none */
    int argc;            /* the command's own arguments, after it */
    char **argv;
} mig_opts;

/* Parses golang's flag syntax (-name value, -name=value, --name) up to the
 * command. Strings point into argv. Errors name the flag. */
int mig_opts_parse(mig_opts *o, int argc, char **argv, we_err *err);

/* `up [N]`: *limit -1 for all. */
int mig_args_up(int argc, char **argv, long *limit, we_err *err);
/* `down [N] | down -all`: *limit -1 for all; *confirm when neither N nor
 * -all was given (golang-migrate asks before undoing everything). */
int mig_args_down(int argc, char **argv, long *limit, bool *confirm, we_err *err);
/* `goto V` (V >= 0) and `force V` (V >= -1): one version argument >= min. */
int mig_args_version(const char *cmd, int argc, char **argv, int64_t min, int64_t *v,
                     we_err *err);
/* `drop [-f]`. */
int mig_args_drop(int argc, char **argv, bool *force, we_err *err);

/* ---- formatting (fmt.c) --------------------------------------------------- */

/* A duration as Go's time.Duration.String prints it: "850ns", "12.5µs",
 * "12.345678ms", "1.5s", "2m3.5s". */
void mig_fmt_duration(char *buf, size_t n, int64_t ns);

/* Line and column (1-based) of PostgreSQL's error position, which counts
 * characters (not bytes) from 1. false when pos is outside sql. */
bool mig_sql_line_col(const char *sql, long pos, int *line, int *col);

/* Replaces in msg (NUL-terminated, capacity cap) every occurrence of the
 * password that url carries (user:PASSWORD@ or ?password=), raw or
 * percent-decoded, by "xxxxx". */
void mig_redact(char *msg, size_t cap, const char *url);

#endif
