/*
 * Command-line parsing for bin/migrate, compatible with golang-migrate v4:
 * options first in Go's flag syntax (-name value, -name=value, --name,
 * booleans as -name or -name=false), then the command and its arguments
 * (`up [N]`, `down [N] | down -all`, `goto V`, `force V`, `drop [-f]`,
 * `version`). Options are dispatched through a table of small setters.
 * Parsing only reads argv; strings in mig_opts point into it. Stateless.
 */
#include "migrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Strict decimal integer: optional sign, digits, nothing else. */
static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True", NULL };
    static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False", NULL };
    for (int i = 0; yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* ---- global options ------------------------------------------------------ */

typedef int (*flag_set)(mig_opts *o, const char *name, const char *value, we_err *err);

static int set_path(mig_opts *o, const char *name, const char *value, we_err *err)
{
    if (!*value)
        return we_err_set(err, WE_EINVAL, "-path: empty directory");
    o->path = value;
    return 0;
}

/* -source is only remembered; -path wins over it, as in golang-migrate. */
static int set_source(mig_opts *o, const char *name, const char *value, we_err *err)
{
    o->source = value;
    return 0;
}

static int set_database(mig_opts *o, const char *name, const char *value, we_err *err)
{
    o->database = value;
    return 0;
}

static int set_bool(bool *dst, const char *name, const char *value, we_err *err)
{
    if (!value) {
        *dst = true;
        return 0;
    }
    if (!parse_bool(value, dst))
        return we_err_set(err, WE_EINVAL, "invalid boolean value \"%s\" for -%s", value, name);
    return 0;
}

static int set_verbose(mig_opts *o, const char *name, const char *value, we_err *err)
{
    return set_bool(&o->verbose, name, value, err);
}

static int set_help(mig_opts *o, const char *name, const char *value, we_err *err)
{
    return set_bool(&o->help, name, value, err);
}

static int set_version(mig_opts *o, const char *name, const char *value, we_err *err)
{
    return set_bool(&o->show_version, name, value, err);
}

static int set_count(long *dst, const char *name, const char *value, we_err *err)
{
    int64_t v;
    if (!parse_i64(value, &v) || v < 0 || v > 86400)
        return we_err_set(err, WE_EINVAL,
                          "invalid value \"%s\" for -%s: want seconds/count 0..86400", value, name);
    *dst = (long)v;
    return 0;
}

static int set_lock_timeout(mig_opts *o, const char *name, const char *value, we_err *err)
{
    return set_count(&o->lock_timeout_s, name, value, err);
}

/* Accepted for compatibility; migrations are read one at a time anyway. */
static int set_prefetch(mig_opts *o, const char *name, const char *value, we_err *err)
{
    long ignored;
    return set_count(&ignored, name, value, err);
}

static const struct flag {
    const char *name;
    bool takes_value;
    flag_set set;
} flags[] = {
    { "path", true, set_path },
    { "source", true, set_source },
    { "database", true, set_database },
    { "lock-timeout", true, set_lock_timeout },
    { "prefetch", true, set_prefetch },
    { "verbose", false, set_verbose },
    { "help", false, set_help },
    { "h", false, set_help },
    { "version", false, set_version },
};

static const struct flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

/* Handles argv[*i], a "-name[=value]" argument; may consume the next one. */
static int parse_flag(mig_opts *o, int argc, char **argv, int *i, we_err *err)
{
    const char *name = argv[*i] + (argv[*i][1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct flag *f = find_flag(name, len);
    if (!f)
        return we_err_set(err, WE_EINVAL, "flag provided but not defined: -%.*s", (int)len, name);
    const char *value = eq ? eq + 1 : NULL;
    if (f->takes_value && !value) {
        if (*i + 1 >= argc)
            return we_err_set(err, WE_EINVAL, "flag needs an argument: -%s", f->name);
        value = argv[++*i];
    }
    return f->set(o, f->name, value, err);
}

/* file://DIR becomes DIR, like golang-migrate's file source driver. */
static int apply_source(mig_opts *o, we_err *err)
{
    const char *src = o->source;
    if (o->path || !src)
        return 0;
    if (strncmp(src, "file://", 7) != 0)
        return we_err_set(err, WE_EINVAL,
                          "-source: unsupported source \"%s\"; only file://DIR is supported", src);
    if (!src[7])
        return we_err_set(err, WE_EINVAL, "-source: file:// URL without a directory");
    o->path = src + 7;
    return 0;
}

int mig_opts_parse(mig_opts *o, int argc, char **argv, we_err *err)
{
    memset(o, 0, sizeof *o);
    o->lock_timeout_s = 15;
    int i = 1, rc = 0;
    for (; rc == 0 && i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (argv[i][0] != '-' || argv[i][1] == '\0')
            break;
        rc = parse_flag(o, argc, argv, &i, err);
    }
    if (rc == 0)
        rc = apply_source(o, err);
    if (rc == 0 && i < argc) {
        o->command = argv[i];
        o->argc = argc - i - 1;
        o->argv = argv + i + 1;
    }
    return rc;
}

/* ---- command arguments ---------------------------------------------------- */

static int parse_limit(const char *s, long *limit, we_err *err)
{
    int64_t v;
    if (!parse_i64(s, &v) || v < 0 || v > 1000000000)
        return we_err_set(err, WE_EINVAL,
                          "can't read limit argument N: \"%s\" is not a non-negative integer", s);
    *limit = (long)v;
    return 0;
}

int mig_args_up(int argc, char **argv, long *limit, we_err *err)
{
    *limit = -1;
    if (argc > 1)
        return we_err_set(err, WE_EINVAL, "too many arguments for up: usage is up [N]");
    return argc == 1 ? parse_limit(argv[0], limit, err) : 0;
}

static bool is_flag(const char *arg, const char *name)
{
    const char *p = arg + (arg[0] == '-' && arg[1] == '-' ? 2 : 1);
    return arg[0] == '-' && strcmp(p, name) == 0;
}

/* A '-' argument that is not a negative number is a flag. */
static bool looks_like_flag(const char *arg)
{
    return arg[0] == '-' && !(arg[1] >= '0' && arg[1] <= '9');
}

int mig_args_down(int argc, char **argv, long *limit, bool *confirm, we_err *err)
{
    bool all = false;
    const char *n = NULL;
    *limit = -1;
    *confirm = false;
    for (int i = 0; i < argc; i++) {
        if (is_flag(argv[i], "all"))
            all = true;
        else if (looks_like_flag(argv[i]))
            return we_err_set(err, WE_EINVAL, "flag provided but not defined: %s", argv[i]);
        else if (n)
            return we_err_set(err, WE_EINVAL,
                              "too many arguments for down: usage is down [N] | down -all");
        else
            n = argv[i];
    }
    if (all && n)
        return we_err_set(err, WE_EINVAL, "-all cannot be used with other arguments");
    if (n)
        return parse_limit(n, limit, err);
    *confirm = !all;
    return 0;
}

int mig_args_version(const char *cmd, int argc, char **argv, int64_t min, int64_t *v, we_err *err)
{
    if (argc != 1)
        return we_err_set(err, WE_EINVAL, "%s needs exactly one argument: %s V", cmd, cmd);
    if (!parse_i64(argv[0], v))
        return we_err_set(err, WE_EINVAL, "can't read version argument V: \"%s\" is not an integer",
                          argv[0]);
    if (*v < min)
        return we_err_set(err, WE_EINVAL, "argument V must be >= %lld", (long long)min);
    return 0;
}

int mig_args_drop(int argc, char **argv, bool *force, we_err *err)
{
    *force = false;
    for (int i = 0; i < argc; i++) {
        if (!is_flag(argv[i], "f"))
            return we_err_set(err, WE_EINVAL, "unexpected argument for drop: %s (usage: drop [-f])",
                              argv[i]);
        *force = true;
    }
    return 0;
}
