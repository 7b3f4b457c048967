/*
 * PostgreSQL side of bin/migrate: one libpq connection, golang-migrate's
 * advisory lock and bookkeeping table, and running planned steps.
 *
 * Each step is two transactions. The first records (target, dirty) and
 * commits, so a crash or failure later is visible. The second runs the whole
 * migration file with one PQexec (multi-statement files work) and records
 * (target, clean) before COMMIT, so the file's effects and the bookkeeping
 * land together or not at all. Consequence: statements that refuse to run in
 * a transaction block (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE
 * used in the same file) do not belong in our migrations. A file that issues
 * its own COMMIT still works; its bookkeeping then gets its own transaction.
 *
 * The connection is owned by the mig_db and used from one thread. Session
 * locks die with the connection, so a killed migrate never leaves the lock
 * held.
 */
#include "migrate.h"

#include "we_buf.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mig_db {
    PGconn *conn;
    bool locked;
    uint32_t key;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The server's message for r (or the connection's) on one line, runs of
 * whitespace squeezed. */
static void pg_message(PGconn *c, const PGresult *r, char *buf, size_t n)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *src = m ? m : PQerrorMessage(c);
    size_t w = 0;
    for (; *src && w + 1 < n; src++) {
        bool space = *src == ' ' || *src == '\n' || *src == '\t';
        if (!space || (w > 0 && buf[w - 1] != ' '))
            buf[w++] = space ? ' ' : *src;
    }
    while (w > 0 && buf[w - 1] == ' ')
        w--;
    buf[w] = '\0';
}

static const char *sqlstate(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* Runs a statement with text parameters; *out (may be NULL) gets the result.
 * `what` names the operation in the error. */
static int exec_params(mig_db *db, const char *what, const char *sql, int n,
                       const char *const *params, PGresult **out, we_err *err)
{
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    char msg[400];
    pg_message(db->conn, r, msg, sizeof msg);
    int rc = strcmp(sqlstate(r), "55P03") == 0 ? WE_ETIMEOUT : WE_EIO;
    PQclear(r);
    return we_err_set(err, rc, "%s: %s", what, msg);
}

static int exec_cmd(mig_db *db, const char *what, const char *sql, we_err *err)
{
    return exec_params(db, what, sql, 0, NULL, NULL, err);
}

/* ---- connection ---------------------------------------------------------- */

static void drop_notice(void *arg, const char *message)
{
}

static bool postgres_url(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

int mig_db_open(mig_db **out, const char *url, bool notices, we_err *err)
{
    if (!postgres_url(url))
        return we_err_set(err, WE_EINVAL,
                          "-database: unsupported URL scheme; want postgres:// or postgresql://");
    /* Defaults first, the URL last: its own parameters win (expand_dbname). */
    const char *keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
    const char *vals[] = { "10", "webencode-migrate", url, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    WE_ASSERT(c != NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[400];
        pg_message(c, NULL, msg, sizeof msg);
        PQfinish(c);
        return we_err_set(err, WE_EIO, "cannot connect to the database given by -database: %s",
                          msg);
    }
    if (!notices)
        PQsetNoticeProcessor(c, drop_notice, NULL);
    mig_db *db = calloc(1, sizeof *db);
    WE_ASSERT(db != NULL);
    db->conn = c;
    *out = db;
    return 0;
}

void mig_db_free(mig_db *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db);
}

/* ---- lock ------------------------------------------------------------------- */

static uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t mig_lock_key(const char *schema, const char *table, const char *database)
{
    uint32_t crc = crc32_update(0, schema, strlen(schema));
    crc = crc32_update(crc, "", 1);
    crc = crc32_update(crc, table, strlen(table));
    crc = crc32_update(crc, "", 1);
    crc = crc32_update(crc, database, strlen(database));
    return crc * 1486364155u;
}

static int compute_key(mig_db *db, we_err *err)
{
    PGresult *r = NULL;
    int rc = exec_params(db, "reading the current database and schema",
                         "SELECT current_database(), current_schema()", 0, NULL, &r, err);
    if (rc != 0)
        return rc;
    if (PQgetisnull(r, 0, 1))
        rc = we_err_set(err, WE_ESTATE, "no current schema: search_path names no existing schema");
    else
        db->key = mig_lock_key(PQgetvalue(r, 0, 1), "schema_migrations", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

int mig_db_lock(mig_db *db, int timeout_s, we_err *err)
{
    char key[16], timeout[32];
    int rc = compute_key(db, err);
    if (rc != 0)
        return rc;
    snprintf(key, sizeof key, "%u", db->key);
    snprintf(timeout, sizeof timeout, "SET lock_timeout = '%ds'", timeout_s);
    const char *p[] = { key };
    rc = exec_cmd(db, "setting lock_timeout", timeout, err);
    if (rc == 0)
        rc = exec_params(db, "taking the migration lock", "SELECT pg_advisory_lock($1::bigint)", 1,
                         p, NULL, err);
    if (rc == WE_ETIMEOUT)
        we_err_set(err, rc, "timeout: can't acquire database lock within %d s "
                            "(another migrate is running on this database)", timeout_s);
    db->locked = rc == 0;
    if (rc == 0)
        rc = exec_cmd(db, "resetting lock_timeout", "RESET lock_timeout", err);
    return rc;
}

int mig_db_unlock(mig_db *db, we_err *err)
{
    char key[16];
    if (!db->locked)
        return 0;
    snprintf(key, sizeof key, "%u", db->key);
    const char *p[] = { key };
    db->locked = false;
    return exec_params(db, "releasing the migration lock", "SELECT pg_advisory_unlock($1::bigint)",
                       1, p, NULL, err);
}

/* ---- bookkeeping ------------------------------------------------------------ */

int mig_db_ensure_table(mig_db *db, we_err *err)
{
    PGresult *r = NULL;
    int rc = exec_params(db, "looking for schema_migrations",
                         "SELECT 1 FROM pg_tables WHERE schemaname = current_schema()"
                         " AND tablename = 'schema_migrations'",
                         0, NULL, &r, err);
    if (rc != 0)
        return rc;
    bool exists = PQntuples(r) > 0;
    PQclear(r);
    if (exists)
        return 0;
    return exec_cmd(db, "creating schema_migrations",
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
                    err);
}

int mig_db_version(mig_db *db, int64_t *version, bool *dirty, we_err *err)
{
    PGresult *r = PQexec(db->conn, "SELECT version, dirty FROM schema_migrations LIMIT 1");
    int rc = 0;
    *version = MIG_NIL_VERSION;
    *dirty = false;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *dirty = PQgetvalue(r, 0, 1)[0] == 't';
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK && strcmp(sqlstate(r), "42P01") != 0) {
        char msg[400];
        pg_message(db->conn, r, msg, sizeof msg);
        rc = we_err_set(err, WE_EIO, "reading schema_migrations: %s", msg);
    }
    PQclear(r);
    return rc;
}

/* Inside an open transaction: golang-migrate keeps no row for a clean nil
 * version and (-1, true) for a dirty one. */
static int write_version(mig_db *db, int64_t version, bool dirty, we_err *err)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)version);
    const char *p[] = { v, dirty ? "true" : "false" };
    int rc = exec_cmd(db, "updating schema_migrations", "TRUNCATE schema_migrations", err);
    if (rc == 0 && (version >= 0 || dirty))
        rc = exec_params(db, "updating schema_migrations",
                         "INSERT INTO schema_migrations (version, dirty) VALUES ($1, $2)", 2, p,
                         NULL, err);
    return rc;
}

/* COMMIT when rc is 0, else ROLLBACK keeping the first error. A COMMIT that
 * the server turns into a rollback is an error too. */
static int tx_end(mig_db *db, int rc, we_err *err)
{
    if (rc != 0) {
        PQclear(PQexec(db->conn, "ROLLBACK"));
        return rc;
    }
    PGresult *r = PQexec(db->conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        char msg[400];
        pg_message(db->conn, r, msg, sizeof msg);
        rc = we_err_set(err, WE_EIO, "COMMIT failed: %s", msg[0] ? msg : "rolled back");
    }
    PQclear(r);
    return rc;
}

int mig_db_set_version(mig_db *db, int64_t version, bool dirty, we_err *err)
{
    int rc = exec_cmd(db, "BEGIN", "BEGIN", err);
    if (rc != 0)
        return rc;
    rc = write_version(db, version, dirty, err);
    return tx_end(db, rc, err);
}

/* ---- running a file ----------------------------------------------------------- */

/* Leaves COPY mode a file put the connection in, so ROLLBACK can run. */
static void drain_copy(PGconn *c, ExecStatusType st)
{
    char *row;
    if (st == PGRES_COPY_IN)
        PQputCopyEnd(c, "COPY FROM STDIN is not supported in migration files");
    else if (st == PGRES_COPY_OUT)
        while (PQgetCopyData(c, &row, 0) > 0)
            PQfreemem(row);
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
}

/* golang-migrate's shape: "migration failed: MSG (column C), DETAIL in line
 * L: FILE (details: ...)", with the file name where it prints the query. */
static int file_error(mig_db *db, const PGresult *r, const char *fname, const char *sql,
                      we_err *err)
{
    char msg[400];
    int line, col;
    pg_message(db->conn, r, msg, sizeof msg);
    const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    bool at = pos && mig_sql_line_col(sql, strtol(pos, NULL, 10), &line, &col);
    we_buf b;
    we_buf_init(&b);
    we_buf_printf(&b, "migration failed: %s", msg);
    if (at)
        we_buf_printf(&b, " (column %d)", col);
    if (detail)
        we_buf_printf(&b, ", %s", detail);
    if (at)
        we_buf_printf(&b, " in line %d", line);
    we_buf_printf(&b, ": %s (details: %s %s%s%s)", fname, sev ? sev : "ERROR", sqlstate(r),
                  hint ? "; hint: " : "", hint ? hint : "");
    int rc = we_err_set(err, WE_EIO, "%s", b.data);
    we_buf_fini(&b);
    return rc;
}

static int run_file(mig_db *db, const char *fname, const char *sql, we_err *err)
{
    PGresult *r = PQexec(db->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        PQclear(r);
        drain_copy(db->conn, st);
        return we_err_set(err, WE_EINVAL, "migration failed: %s uses COPY with STDIN/STDOUT, "
                                          "which migrations cannot carry", fname);
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        rc = file_error(db, r, fname, sql, err);
    PQclear(r);
    return rc;
}

static int apply_step(mig_db *db, const mig_step *s, const char *sql, we_err *err)
{
    const char *fname = s->dir == MIG_UP ? s->m->up_file : s->m->down_file;
    int rc = exec_cmd(db, "BEGIN", "BEGIN", err);
    if (rc != 0)
        return rc;
    rc = run_file(db, fname, sql, err);
    /* The file committed on its own: record the version in a fresh transaction. */
    if (rc == 0 && PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        rc = exec_cmd(db, "BEGIN", "BEGIN", err);
    if (rc == 0)
        rc = write_version(db, s->to, false, err);
    return tx_end(db, rc, err);
}

int mig_db_run(mig_db *db, const mig_list *l, const mig_plan *p, mig_step_cb cb, void *ud,
               we_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const mig_step *s = &p->steps[i];
        char *sql = NULL;
        int64_t t0 = now_ns();
        rc = mig_read_sql(l, s->m, s->dir, &sql, err);
        int64_t t1 = now_ns();
        if (rc == 0)
            rc = mig_db_set_version(db, s->to, true, err);
        if (rc == 0)
            rc = apply_step(db, s, sql, err);
        mig_step_report rep = { s, t1 - t0, now_ns() - t1 };
        if (rc == 0 && cb)
            cb(&rep, ud);
        free(sql);
    }
    return rc;
}

/* ---- drop ------------------------------------------------------------------------ */

/* One DROP per object of the current schema that no extension owns: relations
 * first (CASCADE takes triggers, defaults and dependent views), then routines,
 * then free-standing types. IF EXISTS because a cascade may have got there
 * first. */
static const char *const drop_list_sql =
    "WITH own AS (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema()),"
    " ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')"
    " SELECT stmt FROM ("
    "  SELECT 1 AS ord, format('DROP %s IF EXISTS %I.%I CASCADE',"
    "    CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'"
    "      WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,"
    "    current_schema(), c.relname) AS stmt"
    "  FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM own)"
    "   AND c.relkind IN ('r','p','v','m','S','f')"
    "   AND (c.relkind <> 'r' OR NOT c.relispartition)"
    "   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_class'::regclass AND objid = c.oid)"
    "  UNION ALL"
    "  SELECT 2, format('DROP %s IF EXISTS %I.%I(%s) CASCADE',"
    "    CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END,"
    "    current_schema(), p.proname, pg_get_function_identity_arguments(p.oid))"
    "  FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM own)"
    "   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid)"
    "  UNION ALL"
    "  SELECT 3, format('DROP %s IF EXISTS %I.%I CASCADE',"
    "    CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, current_schema(), t.typname)"
    "  FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid"
    "  WHERE t.typnamespace IN (SELECT oid FROM own)"
    "   AND (t.typtype IN ('e','d','r') OR (t.typtype = 'c' AND c.relkind = 'c'))"
    "   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid)"
    " ) s ORDER BY ord, stmt";

int mig_db_drop(mig_db *db, we_err *err)
{
    PGresult *r = NULL;
    int rc = exec_cmd(db, "BEGIN", "BEGIN", err);
    if (rc != 0)
        return rc;
    rc = exec_params(db, "listing objects to drop", drop_list_sql, 0, NULL, &r, err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = exec_cmd(db, "dropping", PQgetvalue(r, i, 0), err);
    PQclear(r);
    return tx_end(db, rc, err);
}
