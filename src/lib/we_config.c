/*
 * Environment / .env configuration. Called from main() before any thread
 * starts (setenv is not thread-safe); afterwards the environment is only read.
 */
#include "we_config.h"
#include "we_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool valid_name(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* Parses one non-comment line into key/value (pointers into line). */
static int parse_line(char *line, char **key, char **val)
{
    char *s = trim(line);
    if (strncmp(s, "export ", 7) == 0)
        s = trim(s + 7);
    char *eq = strchr(s, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    *key = trim(s);
    char *v = trim(eq + 1);
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        v++;
    } else if (n >= 1 && (v[0] == '"' || v[0] == '\'')) {
        return -1; /* unterminated quote */
    } else {
        char *hash = strstr(v, " #");
        if (hash)
            *hash = '\0';
        v = trim(v);
    }
    *val = v;
    return valid_name(*key) ? 0 : -1;
}

int we_env_load_file(const char *path, we_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : we_err_set(err, WE_EIO, "%s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *key, *val;
        if (parse_line(s, &key, &val) != 0) {
            rc = we_err_set(err, WE_EINVAL, "%s:%d: expected KEY=VALUE", path, lineno);
            break;
        }
        if (!getenv(key))
            setenv(key, val, 0);
    }
    fclose(f);
    return rc;
}

int we_env_load_default(we_err *err)
{
    const char *p = getenv("WEBENCODE_ENV_FILE");
    return we_env_load_file(p && *p ? p : ".env", err);
}

const char *we_cfg_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int we_cfg_int(const char *name, long def, long min, long max, long *out, we_err *err)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < min || n > max)
        return we_err_set(err, WE_EINVAL, "%s=%s is invalid: expected an integer from %ld to %ld",
                          name, v, min, max);
    *out = n;
    return 0;
}

int we_cfg_bool(const char *name, bool def, bool *out, we_err *err)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return we_err_set(err, WE_EINVAL, "%s=%s is invalid: expected true or false", name, v);
}

int we_cfg_url(const char *name, const char *def, const char *const *schemes, const char **out,
               we_err *err)
{
    const char *v = we_cfg_str(name, def);
    const char *sep = v ? strstr(v, "://") : NULL;
    if (sep && sep[3] != '\0') {
        for (const char *const *s = schemes; *s; s++) {
            size_t n = strlen(*s);
            if ((size_t)(sep - v) == n && strncasecmp(v, *s, n) == 0) {
                *out = v;
                return 0;
            }
        }
    }
    char allowed[128] = "";
    for (const char *const *s = schemes; *s; s++) {
        strncat(allowed, *s, sizeof allowed - strlen(allowed) - 1);
        if (s[1])
            strncat(allowed, "://, ", sizeof allowed - strlen(allowed) - 1);
        else
            strncat(allowed, "://", sizeof allowed - strlen(allowed) - 1);
    }
    /* never echo the value: URLs may carry passwords */
    return we_err_set(err, WE_EINVAL, "%s is invalid: expected a URL starting with %s", name,
                      allowed);
}

int we_cfg_log_level(int *out, we_err *err)
{
    const char *v = we_cfg_str("LOG_LEVEL", "info");
    we_log_level l;
    if (we_log_level_parse(v, &l) != 0)
        return we_err_set(err, WE_EINVAL,
                          "LOG_LEVEL=%s is invalid: expected debug, info, warn or error", v);
    *out = (int)l;
    return 0;
}
