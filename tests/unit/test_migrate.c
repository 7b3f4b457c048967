/*
 * Unit tests of migratelib without a database: migration file names and
 * directories (in private temp directories), planning of up / down / goto,
 * command-line parsing, Go-style durations, error positions, password
 * redaction and golang-migrate's advisory lock key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/we-test-migrate.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void put(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Removes dir, its files and its (empty) subdirectories. */
static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

/* A list of versions built in memory, named v<version>. */
static mig_list list_of(const int64_t *versions, size_t n)
{
    mig_list l = { .dir = strdup("mem"), .n = n };
    l.items = calloc(n ? n : 1, sizeof(mig_migration));
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "v%lld", (long long)versions[i]);
        l.items[i] = (mig_migration){ versions[i], strdup(name), strdup("u"), strdup("d") };
    }
    return l;
}

static const int64_t three[] = { 1, 2, 3 };

static void assert_step(const mig_step *s, int64_t version, mig_dir dir, int64_t from, int64_t to)
{
    assert_int_equal(s->m->version, version);
    assert_int_equal(s->dir, dir);
    assert_int_equal(s->from, from);
    assert_int_equal(s->to, to);
}

/* ---- file names --------------------------------------------------------- */

static void test_filename_good(void **st)
{
    bool ok;
    int64_t v;
    char *ident = NULL;
    mig_dir d;
    assert_int_equal(mig_parse_filename("0001_init.up.sql", &ok, &v, &ident, &d, NULL), 0);
    assert_true(ok);
    assert_int_equal(v, 1);
    assert_string_equal(ident, "init");
    assert_int_equal(d, MIG_UP);
    free(ident);
    assert_int_equal(mig_parse_filename("20240101120000_add_x.down.sql", &ok, &v, &ident, &d, NULL),
                     0);
    assert_true(ok);
    assert_int_equal(v, 20240101120000LL);
    assert_string_equal(ident, "add_x");
    assert_int_equal(d, MIG_DOWN);
    free(ident);
}

static void test_filename_greedy_identifier(void **st)
{
    bool ok;
    int64_t v;
    char *ident = NULL;
    mig_dir d;
    /* golang's (.*) is greedy: the last .up./.down. is the direction */
    assert_int_equal(mig_parse_filename("7_a.down.b.up.sql", &ok, &v, &ident, &d, NULL), 0);
    assert_true(ok);
    assert_string_equal(ident, "a.down.b");
    assert_int_equal(d, MIG_UP);
    free(ident);
    assert_int_equal(mig_parse_filename("3_.down.txt", &ok, &v, &ident, &d, NULL), 0);
    assert_true(ok);
    assert_string_equal(ident, "");
    assert_int_equal(v, 3);
    free(ident);
}

static void test_filename_ignored(void **st)
{
    static const char *const names[] = {
        "README.md",       "init.up.sql",     "0001init.up.sql", "0001_init.sql",
        "0001_init.up",    "x0001_init.up.sql", "0001_init.UP.sql", "_1_init.up.sql",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bool ok = true;
        int64_t v;
        char *ident = NULL;
        mig_dir d;
        assert_int_equal(mig_parse_filename(names[i], &ok, &v, &ident, &d, NULL), 0);
        if (ok)
            fail_msg("%s should not be a migration", names[i]);
        assert_null(ident);
    }
}

static void test_filename_version_overflow(void **st)
{
    bool ok;
    int64_t v;
    char *ident = NULL;
    mig_dir d;
    we_err e;
    assert_int_equal(mig_parse_filename("9223372036854775807_max.up.sql", &ok, &v, &ident, &d, &e),
                     0);
    assert_int_equal(v, INT64_MAX);
    free(ident);
    ident = NULL;
    assert_int_equal(mig_parse_filename("9223372036854775808_big.up.sql", &ok, &v, &ident, &d, &e),
                     WE_EINVAL);
    assert_false(ok);
    assert_null(ident);
    assert_non_null(strstr(e.msg, "bigint"));
}

/* ---- directories -------------------------------------------------------- */

static void test_dir_sorted_and_ignores_junk(void **st)
{
    char *dir = make_dir(), sub[512];
    mig_list l;
    put(dir, "0010_ten.up.sql", "");
    put(dir, "0010_ten.down.sql", "");
    put(dir, "2_two.up.sql", "");
    put(dir, "2_two.down.sql", "");
    put(dir, "0001_init.up.sql", "");
    put(dir, "0001_init.down.sql", "");
    put(dir, "README.md", "");
    put(dir, ".0003_hidden.up.sql", "");
    snprintf(sub, sizeof sub, "%s/0009_dir.up.sql", dir);
    mkdir(sub, 0755);
    assert_int_equal(mig_list_load(&l, dir, NULL), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.items[0].version, 1);
    assert_int_equal(l.items[1].version, 2);
    assert_int_equal(l.items[2].version, 10);
    assert_string_equal(l.items[0].name, "init");
    assert_string_equal(l.items[1].up_file, "2_two.up.sql");
    assert_string_equal(l.items[2].down_file, "0010_ten.down.sql");
    assert_int_equal(mig_list_find(&l, 10), 2);
    assert_int_equal(mig_list_find(&l, 3), -1);
    mig_list_fini(&l);
    remove_dir(dir);
}

static void test_dir_duplicate_version(void **st)
{
    char *dir = make_dir();
    mig_list l;
    we_err e;
    put(dir, "0001_a.up.sql", "");
    put(dir, "0001_a.down.sql", "");
    put(dir, "1_b.up.sql", "");
    assert_int_equal(mig_list_load(&l, dir, &e), WE_EEXIST);
    assert_non_null(strstr(e.msg, "duplicate migration version 1"));
    assert_non_null(strstr(e.msg, "1_b.up.sql"));
    assert_non_null(strstr(e.msg, "0001_a.up.sql"));
    assert_int_equal(l.n, 0);
    remove_dir(dir);
}

static void test_dir_duplicate_direction(void **st)
{
    char *dir = make_dir();
    mig_list l;
    we_err e;
    put(dir, "0001_a.up.sql", "");
    put(dir, "0001_a.up.txt", "");
    put(dir, "0001_a.down.sql", "");
    assert_int_equal(mig_list_load(&l, dir, &e), WE_EEXIST);
    assert_non_null(strstr(e.msg, "0001_a.up.txt"));
    remove_dir(dir);
}

static void test_dir_up_without_down(void **st)
{
    char *dir = make_dir();
    mig_list l;
    we_err e;
    put(dir, "0001_a.up.sql", "");
    put(dir, "0001_a.down.sql", "");
    put(dir, "0002_b.up.sql", "");
    assert_int_equal(mig_list_load(&l, dir, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "0002_b.up.sql has no down migration"));
    remove_dir(dir);
}

static void test_dir_down_without_up(void **st)
{
    char *dir = make_dir();
    mig_list l;
    we_err e;
    put(dir, "0003_c.down.sql", "");
    assert_int_equal(mig_list_load(&l, dir, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "0003_c.down.sql has no up migration"));
    remove_dir(dir);
}

static void test_dir_missing(void **st)
{
    mig_list l;
    we_err e;
    assert_int_equal(mig_list_load(&l, "/nonexistent/we-migrations", &e), WE_ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/we-migrations"));
}

static void test_dir_empty(void **st)
{
    char *dir = make_dir();
    mig_list l;
    mig_plan p;
    assert_int_equal(mig_list_load(&l, dir, NULL), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(mig_plan_up(&l, MIG_NIL_VERSION, -1, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    mig_list_fini(&l);
    remove_dir(dir);
}

static void test_read_sql(void **st)
{
    char *dir = make_dir(), *sql = NULL;
    mig_list l;
    we_err e;
    put(dir, "0001_a.up.sql", "CREATE TABLE a (x int);\nSELECT 1;\n");
    put(dir, "0001_a.down.sql", "DROP TABLE a;\n");
    assert_int_equal(mig_list_load(&l, dir, NULL), 0);
    assert_int_equal(mig_read_sql(&l, &l.items[0], MIG_UP, &sql, &e), 0);
    assert_string_equal(sql, "CREATE TABLE a (x int);\nSELECT 1;\n");
    free(sql);
    assert_int_equal(mig_read_sql(&l, &l.items[0], MIG_DOWN, &sql, &e), 0);
    assert_string_equal(sql, "DROP TABLE a;\n");
    free(sql);
    mig_list_fini(&l);
    remove_dir(dir);
}

static void test_read_sql_rejects_nul(void **st)
{
    char *dir = make_dir(), *sql = NULL, path[512];
    mig_list l;
    we_err e;
    put(dir, "0001_a.up.sql", "");
    put(dir, "0001_a.down.sql", "");
    snprintf(path, sizeof path, "%s/0001_a.up.sql", dir);
    FILE *f = fopen(path, "wb");
    fwrite("SELECT 1;\0DROP", 1, 14, f);
    fclose(f);
    assert_int_equal(mig_list_load(&l, dir, NULL), 0);
    assert_int_equal(mig_read_sql(&l, &l.items[0], MIG_UP, &sql, &e), WE_EINVAL);
    assert_null(sql);
    assert_non_null(strstr(e.msg, "NUL"));
    mig_list_fini(&l);
    remove_dir(dir);
}

/* ---- planning ------------------------------------------------------------ */

static void test_plan_up_all_from_nil(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_up(&l, MIG_NIL_VERSION, -1, &p, NULL), 0);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.short_by, 0);
    assert_step(&p.steps[0], 1, MIG_UP, MIG_NIL_VERSION, 1);
    assert_step(&p.steps[1], 2, MIG_UP, 1, 2);
    assert_step(&p.steps[2], 3, MIG_UP, 2, 3);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_up_n(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_up(&l, 1, 1, &p, NULL), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.short_by, 0);
    assert_step(&p.steps[0], 2, MIG_UP, 1, 2);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_up_n_larger_than_available(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_up(&l, 2, 5, &p, NULL), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.short_by, 4);
    assert_step(&p.steps[0], 3, MIG_UP, 2, 3);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_up_at_latest(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_up(&l, 3, -1, &p, NULL), 0);
    assert_int_equal(p.n, 0); /* "no change" */
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    assert_int_equal(mig_plan_up(&l, 3, 1, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 1);
    mig_plan_fini(&p);
    assert_int_equal(mig_plan_up(&l, 1, 0, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_unknown_current_version(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    we_err e;
    assert_int_equal(mig_plan_up(&l, 7, -1, &p, &e), WE_ENOENT);
    assert_non_null(strstr(e.msg, "no migration found for version 7"));
    assert_int_equal(mig_plan_down(&l, 7, 1, &p, &e), WE_ENOENT);
    assert_int_equal(mig_plan_goto(&l, 7, 1, &p, &e), WE_ENOENT);
    mig_list_fini(&l);
}

static void test_plan_sparse_versions(void **st)
{
    static const int64_t v[] = { 1, 5, 20240101 };
    mig_list l = list_of(v, 3);
    mig_plan p;
    assert_int_equal(mig_plan_up(&l, 1, -1, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_step(&p.steps[0], 5, MIG_UP, 1, 5);
    assert_step(&p.steps[1], 20240101, MIG_UP, 5, 20240101);
    mig_plan_fini(&p);
    assert_int_equal(mig_plan_down(&l, 20240101, 1, &p, NULL), 0);
    assert_step(&p.steps[0], 20240101, MIG_DOWN, 20240101, 5);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_down_n(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_down(&l, 3, 2, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.short_by, 0);
    assert_step(&p.steps[0], 3, MIG_DOWN, 3, 2);
    assert_step(&p.steps[1], 2, MIG_DOWN, 2, 1);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_down_all_to_nil(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_down(&l, 3, -1, &p, NULL), 0);
    assert_int_equal(p.n, 3);
    assert_step(&p.steps[2], 1, MIG_DOWN, 1, MIG_NIL_VERSION);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_down_n_larger_than_available(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_down(&l, 2, 5, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.short_by, 3);
    assert_step(&p.steps[1], 1, MIG_DOWN, 1, MIG_NIL_VERSION);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_down_from_nil(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_down(&l, MIG_NIL_VERSION, -1, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    assert_int_equal(mig_plan_down(&l, MIG_NIL_VERSION, 2, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 2);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_goto_up(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_goto(&l, 1, 3, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_step(&p.steps[0], 2, MIG_UP, 1, 2);
    assert_step(&p.steps[1], 3, MIG_UP, 2, 3);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_goto_from_nil(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_goto(&l, MIG_NIL_VERSION, 2, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_step(&p.steps[0], 1, MIG_UP, MIG_NIL_VERSION, 1);
    assert_step(&p.steps[1], 2, MIG_UP, 1, 2);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_goto_down(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    assert_int_equal(mig_plan_goto(&l, 3, 1, &p, NULL), 0);
    assert_int_equal(p.n, 2);
    assert_step(&p.steps[0], 3, MIG_DOWN, 3, 2);
    assert_step(&p.steps[1], 2, MIG_DOWN, 2, 1);
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    mig_list_fini(&l);
}

static void test_plan_goto_same_and_unknown(void **st)
{
    mig_list l = list_of(three, 3);
    mig_plan p;
    we_err e;
    assert_int_equal(mig_plan_goto(&l, 2, 2, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.short_by, 0);
    mig_plan_fini(&p);
    assert_int_equal(mig_plan_goto(&l, 2, 4, &p, &e), WE_ENOENT);
    assert_non_null(strstr(e.msg, "no migration found for version 4"));
    mig_list_fini(&l);
}

/* ---- command line -------------------------------------------------------- */

#define ARGV(...) ((char *[]){ "migrate", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "migrate", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, e, ...) mig_opts_parse((o), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (e))

static void test_opts_basic(void **st)
{
    mig_opts o;
    assert_int_equal(PARSE(&o, NULL, "-path", "d", "-database", "postgres://h/db", "up", "2"), 0);
    assert_string_equal(o.path, "d");
    assert_string_equal(o.database, "postgres://h/db");
    assert_string_equal(o.command, "up");
    assert_int_equal(o.argc, 1);
    assert_string_equal(o.argv[0], "2");
    assert_int_equal(o.lock_timeout_s, 15);
    assert_false(o.verbose);
}

static void test_opts_go_syntax(void **st)
{
    mig_opts o;
    assert_int_equal(PARSE(&o, NULL, "--path=d", "-database=u", "-verbose", "--lock-timeout", "3",
                           "down", "-all"),
                     0);
    assert_string_equal(o.path, "d");
    assert_string_equal(o.database, "u");
    assert_true(o.verbose);
    assert_int_equal(o.lock_timeout_s, 3);
    assert_string_equal(o.command, "down");
    assert_int_equal(o.argc, 1);
    assert_string_equal(o.argv[0], "-all"); /* the command's own flag */
    assert_int_equal(PARSE(&o, NULL, "-verbose=false", "version"), 0);
    assert_false(o.verbose);
    assert_null(o.path);
}

static void test_opts_source_alias(void **st)
{
    mig_opts o;
    we_err e;
    assert_int_equal(PARSE(&o, NULL, "-source", "file://pkg/db/migrations", "up"), 0);
    assert_string_equal(o.path, "pkg/db/migrations");
    assert_int_equal(PARSE(&o, NULL, "-source", "file:///abs/dir", "up"), 0);
    assert_string_equal(o.path, "/abs/dir");
    /* -path wins over -source, as in golang-migrate */
    assert_int_equal(PARSE(&o, NULL, "-source", "file://a", "-path", "b", "up"), 0);
    assert_string_equal(o.path, "b");
    assert_int_equal(PARSE(&o, &e, "-source", "github://x/y", "up"), WE_EINVAL);
    assert_non_null(strstr(e.msg, "-source"));
    assert_int_equal(PARSE(&o, &e, "-source", "file://", "up"), WE_EINVAL);
}

static void test_opts_errors(void **st)
{
    mig_opts o;
    we_err e;
    assert_int_equal(PARSE(&o, &e, "-bogus", "up"), WE_EINVAL);
    assert_string_equal(e.msg, "flag provided but not defined: -bogus");
    assert_int_equal(PARSE(&o, &e, "-path"), WE_EINVAL);
    assert_string_equal(e.msg, "flag needs an argument: -path");
    assert_int_equal(PARSE(&o, &e, "-lock-timeout", "soon", "up"), WE_EINVAL);
    assert_non_null(strstr(e.msg, "-lock-timeout"));
    assert_int_equal(PARSE(&o, &e, "-verbose=maybe", "up"), WE_EINVAL);
    assert_non_null(strstr(e.msg, "-verbose"));
}

static void test_opts_help_version_no_command(void **st)
{
    mig_opts o;
    assert_int_equal(PARSE(&o, NULL, "-help"), 0);
    assert_true(o.help);
    assert_null(o.command);
    assert_int_equal(PARSE(&o, NULL, "-h"), 0);
    assert_true(o.help);
    assert_int_equal(PARSE(&o, NULL, "-version"), 0);
    assert_true(o.show_version);
    assert_int_equal(PARSE(&o, NULL, "-path", "x"), 0);
    assert_null(o.command);
    assert_int_equal(PARSE(&o, NULL, "--", "-weird"), 0);
    assert_string_equal(o.command, "-weird");
}

static void test_args_up(void **st)
{
    long n;
    we_err e;
    assert_int_equal(mig_args_up(0, NULL, &n, NULL), 0);
    assert_int_equal(n, -1);
    assert_int_equal(mig_args_up(1, (char *[]){ "3" }, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(mig_args_up(1, (char *[]){ "x" }, &n, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "can't read limit argument N"));
    assert_int_equal(mig_args_up(1, (char *[]){ "-1" }, &n, &e), WE_EINVAL);
    assert_int_equal(mig_args_up(1, (char *[]){ "2x" }, &n, &e), WE_EINVAL);
    assert_int_equal(mig_args_up(2, (char *[]){ "1", "2" }, &n, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "too many arguments"));
}

static void test_args_down(void **st)
{
    long n;
    bool ask;
    we_err e;
    assert_int_equal(mig_args_down(0, NULL, &n, &ask, NULL), 0);
    assert_int_equal(n, -1);
    assert_true(ask);
    assert_int_equal(mig_args_down(1, (char *[]){ "-all" }, &n, &ask, NULL), 0);
    assert_int_equal(n, -1);
    assert_false(ask);
    assert_int_equal(mig_args_down(1, (char *[]){ "--all" }, &n, &ask, NULL), 0);
    assert_false(ask);
    assert_int_equal(mig_args_down(1, (char *[]){ "2" }, &n, &ask, NULL), 0);
    assert_int_equal(n, 2);
    assert_false(ask);
    assert_int_equal(mig_args_down(2, (char *[]){ "-all", "2" }, &n, &ask, &e), WE_EINVAL);
    assert_string_equal(e.msg, "-all cannot be used with other arguments");
    assert_int_equal(mig_args_down(1, (char *[]){ "-x" }, &n, &ask, &e), WE_EINVAL);
    assert_int_equal(mig_args_down(1, (char *[]){ "-2" }, &n, &ask, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "can't read limit argument N"));
    assert_int_equal(mig_args_down(2, (char *[]){ "1", "2" }, &n, &ask, &e), WE_EINVAL);
}

static void test_args_version(void **st)
{
    int64_t v;
    we_err e;
    assert_int_equal(mig_args_version("goto", 1, (char *[]){ "3" }, 0, &v, NULL), 0);
    assert_int_equal(v, 3);
    assert_int_equal(mig_args_version("goto", 1, (char *[]){ "-1" }, 0, &v, &e), WE_EINVAL);
    assert_int_equal(mig_args_version("force", 1, (char *[]){ "-1" }, -1, &v, NULL), 0);
    assert_int_equal(v, MIG_NIL_VERSION);
    assert_int_equal(mig_args_version("force", 1, (char *[]){ "-2" }, -1, &v, &e), WE_EINVAL);
    assert_string_equal(e.msg, "argument V must be >= -1");
    assert_int_equal(mig_args_version("force", 0, NULL, -1, &v, &e), WE_EINVAL);
    assert_string_equal(e.msg, "force needs exactly one argument: force V");
    assert_int_equal(mig_args_version("goto", 1, (char *[]){ "abc" }, 0, &v, &e), WE_EINVAL);
    assert_non_null(strstr(e.msg, "can't read version argument V"));
}

static void test_args_drop(void **st)
{
    bool force;
    we_err e;
    assert_int_equal(mig_args_drop(0, NULL, &force, NULL), 0);
    assert_false(force);
    assert_int_equal(mig_args_drop(1, (char *[]){ "-f" }, &force, NULL), 0);
    assert_true(force);
    assert_int_equal(mig_args_drop(1, (char *[]){ "now" }, &force, &e), WE_EINVAL);
}

/* ---- formatting ----------------------------------------------------------- */

static void check_duration(int64_t ns, const char *want)
{
    char buf[32];
    mig_fmt_duration(buf, sizeof buf, ns);
    assert_string_equal(buf, want);
}

static void test_fmt_duration(void **st)
{
    check_duration(0, "0s");
    check_duration(850, "850ns");
    check_duration(1500, "1.5\xC2\xB5s");
    check_duration(1000000, "1ms");
    check_duration(12345678, "12.345678ms");
    check_duration(1500000000, "1.5s");
    check_duration(61500000000, "1m1.5s");
    check_duration(3600000000000, "1h0m0s");
}

static void test_sql_line_col(void **st)
{
    int line = 0, col = 0;
    const char *sql = "SELECT 1;\nSELECT x;";
    assert_true(mig_sql_line_col(sql, 1, &line, &col));
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
    assert_true(mig_sql_line_col(sql, 18, &line, &col)); /* the x */
    assert_int_equal(line, 2);
    assert_int_equal(col, 8);
    assert_true(mig_sql_line_col(sql, 20, &line, &col)); /* end of input */
    assert_int_equal(line, 2);
    assert_int_equal(col, 10);
    assert_false(mig_sql_line_col(sql, 21, &line, &col));
    assert_false(mig_sql_line_col(sql, 0, &line, &col));
    /* positions count characters: 'é' is one */
    assert_true(mig_sql_line_col("-- \xC3\xA9\nBAD", 6, &line, &col));
    assert_int_equal(line, 2);
    assert_int_equal(col, 1);
}

static void test_redact(void **st)
{
    char msg[256];
    snprintf(msg, sizeof msg, "auth failed for s3cr@t and s3cr%%40t; hunter2 too");
    mig_redact(msg, sizeof msg,
               "postgres://bob:s3cr%40t@db:5432/x?sslmode=disable&password=hunter2");
    assert_string_equal(msg, "auth failed for xxxxx and xxxxx; xxxxx too");
    snprintf(msg, sizeof msg, "no user info here: bob@db");
    mig_redact(msg, sizeof msg, "postgres://bob@db/x");
    assert_string_equal(msg, "no user info here: bob@db");
    mig_redact(msg, sizeof msg, NULL);
    assert_string_equal(msg, "no user info here: bob@db");
}

static void test_lock_key(void **st)
{
    /* zlib.crc32(b"public\0schema_migrations\0webencode") * 1486364155 mod 2^32 */
    assert_int_equal(mig_lock_key("public", "schema_migrations", "webencode"), 1608486299u);
    assert_int_not_equal(mig_lock_key("public", "schema_migrations", "other"),
                         mig_lock_key("public", "schema_migrations", "webencode"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filename_good),
        cmocka_unit_test(test_filename_greedy_identifier),
        cmocka_unit_test(test_filename_ignored),
        cmocka_unit_test(test_filename_version_overflow),
        cmocka_unit_test(test_dir_sorted_and_ignores_junk),
        cmocka_unit_test(test_dir_duplicate_version),
        cmocka_unit_test(test_dir_duplicate_direction),
        cmocka_unit_test(test_dir_up_without_down),
        cmocka_unit_test(test_dir_down_without_up),
        cmocka_unit_test(test_dir_missing),
        cmocka_unit_test(test_dir_empty),
        cmocka_unit_test(test_read_sql),
        cmocka_unit_test(test_read_sql_rejects_nul),
        cmocka_unit_test(test_plan_up_all_from_nil),
        cmocka_unit_test(test_plan_up_n),
        cmocka_unit_test(test_plan_up_n_larger_than_available),
        cmocka_unit_test(test_plan_up_at_latest),
        cmocka_unit_test(test_plan_unknown_current_version),
        cmocka_unit_test(test_plan_sparse_versions),
        cmocka_unit_test(test_plan_down_n),
        cmocka_unit_test(test_plan_down_all_to_nil),
        cmocka_unit_test(test_plan_down_n_larger_than_available),
        cmocka_unit_test(test_plan_down_from_nil),
        cmocka_unit_test(test_plan_goto_up),
        cmocka_unit_test(test_plan_goto_from_nil),
        cmocka_unit_test(test_plan_goto_down),
        cmocka_unit_test(test_plan_goto_same_and_unknown),
        cmocka_unit_test(test_opts_basic),
        cmocka_unit_test(test_opts_go_syntax),
        cmocka_unit_test(test_opts_source_alias),
        cmocka_unit_test(test_opts_errors),
        cmocka_unit_test(test_opts_help_version_no_command),
        cmocka_unit_test(test_args_up),
        cmocka_unit_test(test_args_down),
        cmocka_unit_test(test_args_version),
        cmocka_unit_test(test_args_drop),
        cmocka_unit_test(test_fmt_duration),
        cmocka_unit_test(test_sql_line_col),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_lock_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
