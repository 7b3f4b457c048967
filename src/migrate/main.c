/*
 * bin/migrate: golang-migrate v4 compatible command line over migratelib.
 *
 *   migrate -path DIR -database URL up [N] | down [N] | down -all | goto V |
 *           force V | version | drop [-f]
 *
 * Output follows golang-migrate: progress and errors on stderr ("1/u init
 * (12.3ms)", "no change", "error: ..."), exit status 1 on any error; only
 * `version` prints its answer on stdout. Every message passes through one
 * printer that removes the database password, and the URL itself is never
 * printed. Commands are a table of small handlers sharing one context.
 * Single-threaded.
 */
#include "migrate.h"

#include "we_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct ctx {
    mig_opts o;
    mig_list list;
    mig_db *db;
    size_t applied; /* steps applied by the current run */
    int64_t start_ms;
} ctx;

static const char usage_text[] =
    "Usage: migrate OPTIONS COMMAND [arg...]\n"
    "       migrate [ -version | -help ]\n"
    "\n"
    "Options:\n"
    "  -source          Location of the migrations (file://DIR)\n"
    "  -path            Shorthand for -source=file://DIR\n"
    "  -database        Run migrations against this database (postgres:// or postgresql:// URL)\n"
    "  -lock-timeout N  Allow N seconds to acquire database lock (default 15)\n"
    "  -verbose         Print verbose logging\n"
    "  -version         Print version\n"
    "  -help            Print usage\n"
    "\n"
    "Commands:\n"
    "  goto V       Migrate to version V\n"
    "  up [N]       Apply all or N up migrations\n"
    "  down [N]     Apply all or N down migrations\n"
    "               Use -all to apply all down migrations\n"
    "  drop [-f]    Drop everything inside database\n"
    "               Use -f to bypass confirmation\n"
    "  force V      Set version V but don't run migration (ignores dirty state)\n"
    "  version      Print current migration version\n";

/* ---- output ---------------------------------------------------------------- */

/* One line on stderr; -verbose prefixes Go's log timestamp. The database
 * password is removed whatever the message. */
static void say(const ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const ctx *c, const char *fmt, ...)
{
    char line[2048], stamp[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mig_redact(line, sizeof line, c->o.database);
    if (c->o.verbose) {
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S ", localtime_r(&now, &tm));
    }
    fprintf(stderr, "%s%s\n", stamp, line);
}

/* Prints "error: MSG" and returns the exit status for errors. */
static int fail(const ctx *c, const we_err *e)
{
    say(c, "error: %s", we_err_msg(e));
    return 1;
}

static const char *path_for_hint(const ctx *c)
{
    return c->o.path ? c->o.path : "pkg/db/migrations";
}

/* The runbook's fix for a dirty database, with the concrete force command
 * when the directory tells which version was the last good one. */
static void dirty_advice(const ctx *c, int64_t v)
{
    long i = mig_list_find(&c->list, v);
    const char *p = path_for_hint(c);
    if (i < 0 && v != MIG_NIL_VERSION) {
        say(c, "Fix the failed migration, then run migrate force <version> with the last fully "
               "applied version: migrate -path %s -database \"$DATABASE_URL\" force <version>",
            p);
        return;
    }
    long long prev = i > 0 ? (long long)c->list.items[i - 1].version : -1;
    size_t next_i = (size_t)(i + 1);
    say(c, "A migration failed and was rolled back, so the schema is still at the last good "
           "version. Fix the migration, then run migrate force <version> with that version:");
    if (v != MIG_NIL_VERSION)
        say(c, "  after a failed up:   migrate -path %s -database \"$DATABASE_URL\" force %lld", p,
            prev);
    if (next_i < c->list.n)
        say(c, "  after a failed down: migrate -path %s -database \"$DATABASE_URL\" force %lld", p,
            (long long)c->list.items[next_i].version);
}

static void report_step(const mig_step_report *r, void *ud)
{
    ctx *c = ud;
    char total[32], read[32], run[32];
    const mig_step *s = r->step;
    const char *d = s->dir == MIG_UP ? "u" : "d";
    c->applied++;
    mig_fmt_duration(total, sizeof total, r->read_ns + r->run_ns);
    mig_fmt_duration(read, sizeof read, r->read_ns);
    mig_fmt_duration(run, sizeof run, r->run_ns);
    if (c->o.verbose)
        say(c, "Finished %lld/%s %s (read %s, ran %s)", (long long)s->m->version, d, s->m->name,
            read, run);
    else
        say(c, "%lld/%s %s (%s)", (long long)s->m->version, d, s->m->name, total);
}

/* golang-migrate's confirmation: only "y" (any case) goes ahead. */
static bool confirm(const ctx *c, const char *question)
{
    char answer[64] = "";
    say(c, "%s [y/N]", question);
    if (!fgets(answer, sizeof answer, stdin))
        return false;
    char *a = answer;
    while (isspace((unsigned char)*a))
        a++;
    size_t n = strlen(a);
    while (n > 0 && isspace((unsigned char)a[n - 1]))
        a[--n] = '\0';
    return (n == 1 && tolower((unsigned char)a[0]) == 'y') || strcasecmp(a, "yes") == 0;
}

/* ---- shared steps ---------------------------------------------------------- */

static int open_db(ctx *c, we_err *e)
{
    return mig_db_open(&c->db, c->o.database, c->o.verbose, e);
}

/* Connects, takes the lock and makes sure the bookkeeping table exists. */
static int lock_db(ctx *c, we_err *e)
{
    int rc = open_db(c, e);
    if (rc == 0)
        rc = mig_db_lock(c->db, (int)c->o.lock_timeout_s, e);
    if (rc == 0)
        rc = mig_db_ensure_table(c->db, e);
    return rc;
}

/* For up/down/goto: loads the directory, locks, reads a clean version. */
static int prepare_change(ctx *c, int64_t *cur)
{
    we_err e;
    bool dirty;
    int rc = mig_list_load(&c->list, c->o.path, &e);
    if (rc == 0)
        rc = lock_db(c, &e);
    if (rc == 0)
        rc = mig_db_version(c->db, cur, &dirty, &e);
    if (rc != 0)
        return fail(c, &e);
    if (!dirty)
        return 0;
    say(c, "error: Dirty database version %lld. Fix and force version.", (long long)*cur);
    dirty_advice(c, *cur);
    return 1;
}

/* After a failed step: when the database is left dirty (the failure was in
 * the migration's own transaction, so it was rolled back), the runbook's
 * force command with the version the schema is really at. */
static void explain_failure(const ctx *c, const mig_plan *p)
{
    int64_t v;
    bool dirty;
    const mig_step *s = &p->steps[c->applied];
    if (mig_db_version(c->db, &v, &dirty, NULL) != 0 || !dirty)
        return;
    say(c, "The step ran in one transaction and was rolled back: the schema is still at "
           "version %lld%s, marked dirty at %lld.",
        (long long)s->from, s->from == MIG_NIL_VERSION ? " (none)" : "", (long long)v);
    say(c, "Fix the migration, then run migrate force <version>: migrate -path %s -database "
           "\"$DATABASE_URL\" force %lld",
        path_for_hint(c), (long long)s->from);
}

static int run_plan(ctx *c, mig_plan *p)
{
    we_err e;
    int status = 0;
    if (p->n == 0 && p->short_by == 0) {
        say(c, "no change");
    } else if (mig_db_run(c->db, &c->list, p, report_step, c, &e) != 0) {
        status = fail(c, &e);
        explain_failure(c, p);
    } else if (p->short_by > 0) {
        say(c, "error: limit %ld short: only %zu of the %zu requested migrations exist",
            p->short_by, p->n, p->n + (size_t)p->short_by);
        status = 1;
    }
    if (c->o.verbose)
        say(c, "Finished after %lldms", (long long)(we_now_mono_ms() - c->start_ms));
    mig_plan_fini(p);
    return status;
}

/* ---- commands -------------------------------------------------------------- */

static int cmd_up(ctx *c)
{
    we_err e;
    long limit;
    int64_t cur;
    mig_plan p;
    if (mig_args_up(c->o.argc, c->o.argv, &limit, &e) != 0)
        return fail(c, &e);
    int status = prepare_change(c, &cur);
    if (status != 0)
        return status;
    if (mig_plan_up(&c->list, cur, limit, &p, &e) != 0)
        return fail(c, &e);
    return run_plan(c, &p);
}

static int cmd_down(ctx *c)
{
    we_err e;
    long limit;
    bool ask;
    int64_t cur;
    mig_plan p;
    if (mig_args_down(c->o.argc, c->o.argv, &limit, &ask, &e) != 0)
        return fail(c, &e);
    if (ask) {
        if (!confirm(c, "Are you sure you want to apply all down migrations?")) {
            say(c, "Not applying all down migrations");
            return 1;
        }
        say(c, "Applying all down migrations");
    }
    int status = prepare_change(c, &cur);
    if (status != 0)
        return status;
    if (mig_plan_down(&c->list, cur, limit, &p, &e) != 0)
        return fail(c, &e);
    return run_plan(c, &p);
}

static int cmd_goto(ctx *c)
{
    we_err e;
    int64_t target, cur;
    mig_plan p;
    if (mig_args_version("goto", c->o.argc, c->o.argv, 0, &target, &e) != 0)
        return fail(c, &e);
    int status = prepare_change(c, &cur);
    if (status != 0)
        return status;
    if (mig_plan_goto(&c->list, cur, target, &p, &e) != 0)
        return fail(c, &e);
    return run_plan(c, &p);
}

static int cmd_force(ctx *c)
{
    we_err e;
    int64_t v;
    if (mig_args_version("force", c->o.argc, c->o.argv, MIG_NIL_VERSION, &v, &e) != 0)
        return fail(c, &e);
    if (lock_db(c, &e) != 0 || mig_db_set_version(c->db, v, false, &e) != 0)
        return fail(c, &e);
    if (c->o.verbose)
        say(c, "Finished after %lldms", (long long)(we_now_mono_ms() - c->start_ms));
    return 0;
}

static int cmd_version(ctx *c)
{
    we_err e;
    int64_t v;
    bool dirty;
    int rc = c->o.argc > 0 ? we_err_set(&e, WE_EINVAL, "version takes no arguments") : 0;
    if (rc == 0)
        rc = open_db(c, &e);
    if (rc == 0)
        rc = mig_db_version(c->db, &v, &dirty, &e);
    if (rc == 0 && v == MIG_NIL_VERSION && !dirty)
        rc = we_err_set(&e, WE_ENOENT, "no migration");
    if (rc != 0)
        return fail(c, &e);
    printf("%lld%s\n", (long long)v, dirty ? " (dirty)" : "");
    return 0;
}

static int cmd_drop(ctx *c)
{
    we_err e;
    bool force;
    if (mig_args_drop(c->o.argc, c->o.argv, &force, &e) != 0)
        return fail(c, &e);
    if (!force) {
        if (!confirm(c, "Are you sure you want to drop the entire database schema?")) {
            say(c, "error: Aborted dropping the entire database schema");
            return 1;
        }
        say(c, "Dropping the entire database schema");
    }
    if (open_db(c, &e) != 0 || mig_db_lock(c->db, (int)c->o.lock_timeout_s, &e) != 0 ||
        mig_db_drop(c->db, &e) != 0)
        return fail(c, &e);
    return 0;
}

static const struct command {
    const char *name;
    bool needs_path;
    int (*run)(ctx *c);
} commands[] = {
    { "up", true, cmd_up },           { "down", true, cmd_down },
    { "goto", true, cmd_goto },       { "force", false, cmd_force },
    { "version", false, cmd_version }, { "drop", false, cmd_drop },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

/* Everything that can be refused before touching the database. */
static int check_invocation(ctx *c, const struct command **cmd)
{
    if (!c->o.command) {
        fputs(usage_text, stderr);
        say(c, "error: no command given");
        return 1;
    }
    *cmd = find_command(c->o.command);
    if (!*cmd) {
        say(c, "error: unknown command \"%s\"; run migrate -help for the list", c->o.command);
        return 1;
    }
    if ((*cmd)->needs_path && !c->o.path) {
        say(c, "error: %s needs the migrations directory: -path DIR (or -source file://DIR)",
            c->o.command);
        return 1;
    }
    if (!c->o.database) {
        say(c, "error: %s needs the database: -database postgres://...", c->o.command);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ctx c;
    we_err e;
    const struct command *cmd = NULL;
    memset(&c, 0, sizeof c);
    c.start_ms = we_now_mono_ms();
    int status = mig_opts_parse(&c.o, argc, argv, &e) != 0 ? fail(&c, &e) : 0;
    if (status == 0 && c.o.help)
        fputs(usage_text, stderr);
    else if (status == 0 && c.o.show_version)
        printf("%s\n", WE_VERSION);
    else if (status == 0 && (status = check_invocation(&c, &cmd)) == 0)
        status = cmd->run(&c);
    if (c.db && mig_db_unlock(c.db, &e) != 0 && status == 0)
        status = fail(&c, &e);
    mig_db_free(c.db);
    mig_list_fini(&c.list);
    return status;
}
