/*
 * The migration directory and the planner, both pure (no database).
 *
 * A directory is read like golang-migrate's file source: entries matching
 * ^([0-9]+)_(.*)\.(up|down)\.(.*)$ are migrations, everything else is
 * ignored. We are stricter where golang-migrate silently does something
 * surprising: a version must have exactly one up and one down file, with the
 * same name, or loading fails and names the offending file. Names are sorted
 * before they are read, so the file named in an error does not depend on the
 * order readdir happens to return.
 *
 * Planning turns a command into steps, mirroring golang-migrate's readUp /
 * readDown / read: `up N` and `down N` take what exists and report how many
 * steps were short; goto walks one version at a time towards its target.
 * Single-threaded; all state lives in the caller's mig_list / mig_plan.
 */
#include "migrate.h"

#include "we_buf.h"
#include "we_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- file names ------------------------------------------------------------ */

/* The identifier is greedy in golang's regexp, so the direction is the last
 * ".up." / ".down." in the name. Returns the offset of that dot, or -1. */
static long find_direction(const char *rest, mig_dir *dir)
{
    long found = -1;
    for (const char *p = rest; (p = strchr(p, '.')) != NULL; p++) {
        if (strncmp(p, ".up.", 4) == 0) {
            found = p - rest;
            *dir = MIG_UP;
        } else if (strncmp(p, ".down.", 6) == 0) {
            found = p - rest;
            *dir = MIG_DOWN;
        }
    }
    return found;
}

static int parse_version(const char *digits, size_t n, int64_t *version, we_err *err)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (v > (uint64_t)(INT64_MAX - (digits[i] - '0')) / 10)
            return we_err_set(err, WE_EINVAL, "version %.*s does not fit a bigint", (int)n,
                              digits);
        v = v * 10 + (uint64_t)(digits[i] - '0');
    }
    *version = (int64_t)v;
    return 0;
}

int mig_parse_filename(const char *fname, bool *matched, int64_t *version, char **ident,
                       mig_dir *dir, we_err *err)
{
    size_t ndigits = strspn(fname, "0123456789");
    *matched = false;
    if (ndigits == 0 || fname[ndigits] != '_' || strchr(fname, '\n'))
        return 0;
    const char *rest = fname + ndigits + 1;
    long at = find_direction(rest, dir);
    if (at < 0)
        return 0;
    int rc = parse_version(fname, ndigits, version, err);
    if (rc != 0)
        return rc;
    *ident = strndup(rest, (size_t)at);
    WE_ASSERT(*ident != NULL);
    *matched = true;
    return 0;
}

/* ---- loading a directory --------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_migration(const void *a, const void *b)
{
    const mig_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool is_directory(const char *dir, const struct dirent *e)
{
    if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
        return e->d_type == DT_DIR;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The sorted names of the plain entries of dir. */
static int read_names(const char *dir, char ***out, size_t *n, we_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return we_err_set(err, errno == ENOENT ? WE_ENOENT : WE_EIO,
                          "cannot read migrations directory %s: %s", dir, strerror(errno));
    size_t cap = 16;
    char **names = malloc(cap * sizeof *names);
    WE_ASSERT(names != NULL);
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || is_directory(dir, e))
            continue;
        if (*n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            WE_ASSERT(names != NULL);
        }
        names[(*n)++] = we_strdup(e->d_name);
    }
    closedir(d);
    if (*n > 0)
        qsort(names, *n, sizeof *names, cmp_str);
    *out = names;
    return 0;
}

/* The entry for version, appended (zeroed) when new. */
static mig_migration *slot_for(mig_list *l, size_t *cap, int64_t version)
{
    long i = mig_list_find(l, version);
    if (i >= 0)
        return &l->items[i];
    if (l->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        l->items = realloc(l->items, *cap * sizeof *l->items);
        WE_ASSERT(l->items != NULL);
    }
    mig_migration *m = &l->items[l->n++];
    memset(m, 0, sizeof *m);
    m->version = version;
    return m;
}

static int add_file(mig_list *l, size_t *cap, const char *fname, we_err *err)
{
    bool matched;
    int64_t version;
    char *ident = NULL;
    mig_dir dir;
    we_err perr;
    int rc = mig_parse_filename(fname, &matched, &version, &ident, &dir, &perr);
    if (rc != 0)
        return we_err_set(err, rc, "%s/%s: %s", l->dir, fname, perr.msg);
    if (!matched)
        return 0;
    mig_migration *m = slot_for(l, cap, version);
    char **file = dir == MIG_UP ? &m->up_file : &m->down_file;
    const char *other = *file ? *file : dir == MIG_UP ? m->down_file : m->up_file;
    if (*file || (m->name && strcmp(m->name, ident) != 0)) {
        rc = we_err_set(err, WE_EEXIST, "duplicate migration version %lld: %s/%s and %s",
                        (long long)version, l->dir, fname, other);
        goto done;
    }
    *file = we_strdup(fname);
    if (!m->name) {
        m->name = ident; /* the list owns it now */
        ident = NULL;
    }
done:
    free(ident);
    return rc;
}

static int check_pairs(const mig_list *l, we_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const mig_migration *m = &l->items[i];
        if (!m->down_file)
            return we_err_set(err, WE_EINVAL,
                              "%s/%s has no down migration: every up needs a matching .down. file",
                              l->dir, m->up_file);
        if (!m->up_file)
            return we_err_set(err, WE_EINVAL,
                              "%s/%s has no up migration: every down needs a matching .up. file",
                              l->dir, m->down_file);
    }
    return 0;
}

int mig_list_load(mig_list *out, const char *dir, we_err *err)
{
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    memset(out, 0, sizeof *out);
    out->dir = we_strdup(dir);
    int rc = read_names(dir, &names, &nnames, err);
    for (size_t i = 0; rc == 0 && i < nnames; i++)
        rc = add_file(out, &cap, names[i], err);
    if (rc == 0 && out->n > 0) {
        qsort(out->items, out->n, sizeof *out->items, cmp_migration);
        rc = check_pairs(out, err);
    }
    free_names(names, nnames);
    if (rc != 0)
        mig_list_fini(out);
    return rc;
}

void mig_list_fini(mig_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].up_file);
        free(l->items[i].down_file);
    }
    free(l->items);
    free(l->dir);
    memset(l, 0, sizeof *l);
}

long mig_list_find(const mig_list *l, int64_t version)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].version == version)
            return (long)i;
    return -1;
}

int mig_read_sql(const mig_list *l, const mig_migration *m, mig_dir d, char **sql, we_err *err)
{
    const char *fname = d == MIG_UP ? m->up_file : m->down_file;
    char path[4096], chunk[65536];
    snprintf(path, sizeof path, "%s/%s", l->dir, fname);
    FILE *f = fopen(path, "rb");
    if (!f)
        return we_err_set(err, WE_EIO, "cannot open %s: %s", path, strerror(errno));
    we_buf b;
    we_buf_init(&b);
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        we_buf_add(&b, chunk, got);
    int rc = 0;
    if (ferror(f))
        rc = we_err_set(err, WE_EIO, "cannot read %s: %s", path, strerror(errno));
    else if (memchr(b.data, '\0', b.len))
        rc = we_err_set(err, WE_EINVAL, "%s contains a NUL byte", path);
    fclose(f);
    if (rc == 0)
        *sql = we_buf_steal(&b);
    we_buf_fini(&b);
    return rc;
}

/* ---- planning -------------------------------------------------------------- */

static int current_index(const mig_list *l, int64_t cur, long *idx, we_err *err)
{
    *idx = cur == MIG_NIL_VERSION ? -1 : mig_list_find(l, cur);
    if (cur != MIG_NIL_VERSION && *idx < 0)
        return we_err_set(err, WE_ENOENT, "no migration found for version %lld in %s",
                          (long long)cur, l->dir);
    return 0;
}

/* Sizes p for want steps out of avail, recording how many the limit lacks. */
static void plan_alloc(mig_plan *p, long limit, long avail)
{
    long want = limit < 0 || limit > avail ? avail : limit;
    memset(p, 0, sizeof *p);
    p->short_by = limit > avail ? limit - avail : 0;
    p->n = (size_t)want;
    p->steps = calloc(p->n ? p->n : 1, sizeof *p->steps);
    WE_ASSERT(p->steps != NULL);
}

int mig_plan_up(const mig_list *l, int64_t cur, long limit, mig_plan *out, we_err *err)
{
    long idx;
    int rc = current_index(l, cur, &idx, err);
    if (rc != 0)
        return rc;
    plan_alloc(out, limit, (long)l->n - (idx + 1));
    for (size_t k = 0; k < out->n; k++) {
        const mig_migration *m = &l->items[(size_t)(idx + 1) + k];
        out->steps[k] = (mig_step){ m, MIG_UP, k == 0 ? cur : m[-1].version, m->version };
    }
    return 0;
}

int mig_plan_down(const mig_list *l, int64_t cur, long limit, mig_plan *out, we_err *err)
{
    long idx;
    int rc = current_index(l, cur, &idx, err);
    if (rc != 0)
        return rc;
    plan_alloc(out, limit, idx + 1);
    for (size_t k = 0; k < out->n; k++) {
        size_t i = (size_t)idx - k;
        const mig_migration *m = &l->items[i];
        int64_t to = i > 0 ? l->items[i - 1].version : MIG_NIL_VERSION;
        out->steps[k] = (mig_step){ m, MIG_DOWN, m->version, to };
    }
    return 0;
}

int mig_plan_goto(const mig_list *l, int64_t cur, int64_t target, mig_plan *out, we_err *err)
{
    long idx, want = mig_list_find(l, target);
    int rc = current_index(l, cur, &idx, err);
    if (rc != 0)
        return rc;
    if (want < 0)
        return we_err_set(err, WE_ENOENT, "no migration found for version %lld in %s",
                          (long long)target, l->dir);
    if (want >= idx)
        return mig_plan_up(l, cur, want - idx, out, err);
    return mig_plan_down(l, cur, idx - want, out, err);
}

void mig_plan_fini(mig_plan *p)
{
    if (!p)
        return;
    free(p->steps);
    memset(p, 0, sizeof *p);
}
