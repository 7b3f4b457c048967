/*
 * plugin.toml validation and configuration resolution. The TOML reader gives
 * a JSON tree plus the line of every key; validation walks the tree through
 * two dispatch tables (top-level keys, config_schema field keys), so an error
 * names the line of the key at fault. Configuration values are plain jansson
 * objects checked against the schema.
 *
 * No shared state. we_manifest_resolve_config reads the environment, which
 * the binaries only write before their threads start.
 */
#include "we_manifest.h"
#include "we_toml.h"
#include "we_util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[WE_PT_COUNT] = {"auth", "storage", "encoder", "live",
                                                    "publisher"};
static const char *const field_type_names[] = {"string", "integer", "boolean", "array"};

const char *we_plugin_type_name(we_plugin_type t)
{
    return (unsigned)t < WE_PT_COUNT ? type_names[t] : "?";
}

int we_plugin_type_parse(const char *s, we_plugin_type *out)
{
    for (int i = 0; i < WE_PT_COUNT; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (we_plugin_type)i;
            return 0;
        }
    }
    return WE_EINVAL;
}

const char *we_field_type_name(we_field_type t)
{
    return (unsigned)t <= WE_FT_ARRAY ? field_type_names[t] : "?";
}

bool we_plugin_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > WE_PLUGIN_ID_MAX || id[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

static bool env_name_valid(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static bool has_type(json_t *v, we_field_type t)
{
    switch (t) {
    case WE_FT_STRING:
        return json_is_string(v);
    case WE_FT_INTEGER:
        return json_is_integer(v);
    case WE_FT_BOOLEAN:
        return json_is_boolean(v);
    case WE_FT_ARRAY:
        return json_is_array(v);
    }
    return false;
}

/* --- manifest validation ---------------------------------------------------- */

typedef struct mctx {
    const we_toml *t;
    we_manifest *m;
    we_manifest_field *f; /* the field being read */
    const char *dir_id;
    we_err *err;
} mctx;

/* "name:line: message" for the key at path ("name: message" without a line). */
static int fail_at(mctx *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(mctx *x, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = path ? we_toml_line(x->t, path) : 0;
    if (line > 0)
        return we_err_set(x->err, WE_EINVAL, "%s:%d: %s", x->t->name, line, msg);
    return we_err_set(x->err, WE_EINVAL, "%s: %s", x->t->name, msg);
}

static int want_string(mctx *x, const char *path, json_t *v, char **out)
{
    if (!json_is_string(v))
        return fail_at(x, path, "'%s' must be a string", path);
    free(*out);
    *out = we_strdup(json_string_value(v));
    return 0;
}

static int k_id(mctx *x, const char *path, json_t *v)
{
    if (want_string(x, path, v, &x->m->id) != 0)
        return WE_EINVAL;
    if (!we_plugin_id_valid(x->m->id))
        return fail_at(x, path, "id '%s' must match [a-z0-9][a-z0-9-]{0,62}", x->m->id);
    if (x->dir_id && strcmp(x->dir_id, x->m->id) != 0)
        return fail_at(x, path, "id '%s' differs from its directory name '%s'", x->m->id,
                       x->dir_id);
    return 0;
}

static int k_type(mctx *x, const char *path, json_t *v)
{
    if (!json_is_string(v) || we_plugin_type_parse(json_string_value(v), &x->m->type) != 0)
        return fail_at(x, path, "type must be one of auth, storage, encoder, live, publisher");
    return 0;
}

static int k_version(mctx *x, const char *path, json_t *v)
{
    if (want_string(x, path, v, &x->m->version) != 0)
        return WE_EINVAL;
    return x->m->version[0] ? 0 : fail_at(x, path, "version must not be empty");
}

static int k_api_version(mctx *x, const char *path, json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT_MAX)
        return fail_at(x, path, "api_version must be a positive integer");
    x->m->api_version = (int)json_integer_value(v);
    return 0;
}

static int k_description(mctx *x, const char *path, json_t *v)
{
    return want_string(x, path, v, &x->m->description);
}

static int k_executable(mctx *x, const char *path, json_t *v)
{
    if (want_string(x, path, v, &x->m->executable) != 0)
        return WE_EINVAL;
    const char *e = x->m->executable;
    if (!e[0] || strchr(e, '/') || strcmp(e, ".") == 0 || strcmp(e, "..") == 0)
        return fail_at(x, path, "executable must be a plain file name in the plugin's directory");
    return 0;
}

static int k_capabilities(mctx *x, const char *path, json_t *v)
{
    if (!json_is_object(v))
        return fail_at(x, path, "capabilities must be a table");
    json_decref(x->m->capabilities);
    x->m->capabilities = json_deep_copy(v);
    return 0;
}

/* --- [config_schema.<field>] ------------------------------------------------- */

static int f_type(mctx *x, const char *path, json_t *v)
{
    for (int i = 0; i <= WE_FT_ARRAY; i++) {
        if (json_is_string(v) && strcmp(json_string_value(v), field_type_names[i]) == 0) {
            x->f->type = (we_field_type)i;
            return 0;
        }
    }
    return fail_at(x, path, "'%s' must be one of string, integer, boolean, array", path);
}

static int want_bool(mctx *x, const char *path, json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return fail_at(x, path, "'%s' must be true or false", path);
    *out = json_is_true(v);
    return 0;
}

static int f_required(mctx *x, const char *path, json_t *v)
{
    return want_bool(x, path, v, &x->f->required);
}

static int f_secret(mctx *x, const char *path, json_t *v)
{
    return want_bool(x, path, v, &x->f->secret);
}

static int f_default(mctx *x, const char *path, json_t *v)
{
    x->f->def = json_incref(v); /* type-checked once the whole table is read */
    return 0;
}

static int f_env(mctx *x, const char *path, json_t *v)
{
    if (want_string(x, path, v, &x->f->env) != 0)
        return WE_EINVAL;
    if (!env_name_valid(x->f->env))
        return fail_at(x, path, "'%s' must be an environment variable name", path);
    return 0;
}

static int f_description(mctx *x, const char *path, json_t *v)
{
    return want_string(x, path, v, &x->f->description);
}

typedef int (*key_fn)(mctx *x, const char *path, json_t *v);
typedef struct key_def {
    const char *key;
    bool required;
    key_fn fn;
} key_def;

static const key_def field_keys[] = {
    {"type", true, f_type}, {"required", false, f_required},       {"default", false, f_default},
    {"env", false, f_env},  {"description", false, f_description}, {"secret", false, f_secret},
    {NULL, false, NULL},
};

/* Runs each member of obj through its handler in defs; names unknown and
 * missing keys. prefix is obj's path ("" for the root). */
static int walk(mctx *x, const char *prefix, json_t *obj, const key_def *defs)
{
    const char *key;
    json_t *v;
    char path[512];
    json_object_foreach(obj, key, v)
    {
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        const key_def *d = defs;
        while (d->key && strcmp(d->key, key) != 0)
            d++;
        if (!d->key)
            return fail_at(x, path, "unknown key '%s'", path);
        if (d->fn(x, path, v) != 0)
            return WE_EINVAL;
    }
    for (const key_def *d = defs; d->key; d++) {
        if (d->required && !json_object_get(obj, d->key))
            return fail_at(x, prefix[0] ? prefix : NULL, "missing key '%s%s%s'", prefix,
                           prefix[0] ? "." : "", d->key);
    }
    return 0;
}

static int schema_field(mctx *x, const char *path, const char *name, json_t *v)
{
    if (!json_is_object(v))
        return fail_at(x, path, "'%s' must be a table ([%s])", path, path);
    we_manifest_field *f = &x->m->fields[x->m->n_fields++];
    f->name = we_strdup(name);
    f->description = we_strdup("");
    x->f = f;
    if (walk(x, path, v, field_keys) != 0)
        return WE_EINVAL;
    if (f->def && !has_type(f->def, f->type)) {
        char dpath[600];
        snprintf(dpath, sizeof dpath, "%s.default", path);
        return fail_at(x, dpath, "'%s' must be of type %s", dpath, field_type_names[f->type]);
    }
    return 0;
}

static int k_config_schema(mctx *x, const char *path, json_t *v)
{
    if (!json_is_object(v))
        return fail_at(x, path, "config_schema must be a table");
    size_t n = json_object_size(v);
    x->m->fields = calloc(n ? n : 1, sizeof *x->m->fields);
    WE_ASSERT(x->m->fields != NULL);
    const char *name;
    json_t *fv;
    char fpath[512];
    json_object_foreach(v, name, fv)
    {
        snprintf(fpath, sizeof fpath, "config_schema.%s", name);
        if (schema_field(x, fpath, name, fv) != 0)
            return WE_EINVAL;
    }
    return 0;
}

static const key_def top_keys[] = {
    {"id", true, k_id},
    {"type", true, k_type},
    {"version", true, k_version},
    {"api_version", true, k_api_version},
    {"description", false, k_description},
    {"executable", false, k_executable},
    {"capabilities", false, k_capabilities},
    {"config_schema", false, k_config_schema},
    {NULL, false, NULL},
};

static int from_toml(const we_toml *t, const char *dir_id, we_manifest **out, we_err *err)
{
    we_manifest *m = calloc(1, sizeof *m);
    WE_ASSERT(m != NULL);
    m->description = we_strdup("");
    m->capabilities = json_object();
    mctx x = {.t = t, .m = m, .dir_id = dir_id, .err = err};
    int rc = walk(&x, "", t->root, top_keys);
    if (rc != 0) {
        we_manifest_free(m);
        return rc;
    }
    if (!m->executable)
        m->executable = we_strdup(m->id);
    *out = m;
    return 0;
}

int we_manifest_parse(const char *name, const char *text, size_t len, const char *dir_id,
                      we_manifest **out, we_err *err)
{
    we_toml *t = NULL;
    int rc = we_toml_parse(name, text, len, &t, err);
    if (rc == 0)
        rc = from_toml(t, dir_id, out, err);
    we_toml_free(t);
    return rc;
}

int we_manifest_load(const char *dir, we_manifest **out, we_err *err)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    const char *base = dir + n;
    while (base > dir && base[-1] != '/')
        base--;
    char id[WE_PLUGIN_ID_MAX + 2], path[4096];
    snprintf(id, sizeof id, "%.*s", (int)(dir + n - base), base);
    snprintf(path, sizeof path, "%.*s/plugin.toml", (int)n, dir);
    we_toml *t = NULL;
    int rc = we_toml_load(path, &t, err);
    if (rc == 0)
        rc = from_toml(t, id, out, err);
    we_toml_free(t);
    return rc;
}

void we_manifest_free(we_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_fields; i++) {
        free(m->fields[i].name);
        free(m->fields[i].env);
        free(m->fields[i].description);
        json_decref(m->fields[i].def);
    }
    free(m->fields);
    free(m->id);
    free(m->version);
    free(m->description);
    free(m->executable);
    json_decref(m->capabilities);
    free(m);
}

const we_manifest_field *we_manifest_field_find(const we_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->n_fields; i++)
        if (strcmp(m->fields[i].name, name) == 0)
            return &m->fields[i];
    return NULL;
}

/* --- configuration -------------------------------------------------------------- */

int we_manifest_check_config(const we_manifest *m, const char *source, json_t *config, we_err *err)
{
    if (!config)
        return 0;
    if (!json_is_object(config))
        return we_err_set(err, WE_EINVAL, "%s of plugin %s must be an object", source, m->id);
    const char *key;
    json_t *v;
    json_object_foreach(config, key, v)
    {
        const we_manifest_field *f = we_manifest_field_find(m, key);
        if (!f)
            return we_err_set(err, WE_EINVAL, "%s: unknown config field '%s' for plugin %s", source,
                              key, m->id);
        if (!json_is_null(v) && !has_type(v, f->type))
            return we_err_set(err, WE_EINVAL, "%s: config field '%s' must be of type %s", source,
                              key, field_type_names[f->type]);
    }
    return 0;
}

static int env_bool(const char *s, json_t **out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = json_boolean(strcasecmp(s, yes[i]) == 0);
            return 0;
        }
    }
    return WE_EINVAL;
}

static int env_int(const char *s, json_t **out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return WE_EINVAL;
    *out = json_integer(v);
    return 0;
}

static json_t *env_array(const char *s)
{
    json_t *a = json_array();
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *b = s;
        while (n > 0 && (*b == ' ' || *b == '\t'))
            b++, n--;
        while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\t'))
            n--;
        json_t *str = json_stringn(b, n);
        if (!str) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, str);
        s = comma ? comma + 1 : s + strlen(s);
    }
    return a;
}

/* The value of f's environment variable converted to its type; *out NULL
 * when the variable is unset or empty. */
static int env_value(const we_manifest_field *f, json_t **out, we_err *err)
{
    *out = NULL;
    const char *s = f->env ? getenv(f->env) : NULL;
    if (!s || !*s)
        return 0;
    int rc = 0;
    switch (f->type) {
    case WE_FT_STRING:
        rc = (*out = json_string(s)) ? 0 : WE_EINVAL;
        break;
    case WE_FT_INTEGER:
        rc = env_int(s, out);
        break;
    case WE_FT_BOOLEAN:
        rc = env_bool(s, out);
        break;
    case WE_FT_ARRAY:
        rc = (*out = env_array(s)) ? 0 : WE_EINVAL;
        break;
    }
    if (rc != 0)
        return we_err_set(err, WE_EINVAL, "%s (config field '%s') is not a valid %s", f->env,
                          f->name, field_type_names[f->type]);
    return 0;
}

static json_t *set_value(json_t *config, const char *name)
{
    json_t *v = config ? json_object_get(config, name) : NULL;
    return json_is_null(v) ? NULL : v;
}

static int resolve_field(const we_manifest_field *f, json_t *db, json_t *file, json_t *out,
                         we_err *err)
{
    json_t *v = set_value(db, f->name);
    if (!v)
        v = set_value(file, f->name);
    if (v) {
        json_object_set(out, f->name, v);
        return 0;
    }
    int rc = env_value(f, &v, err);
    if (rc != 0)
        return rc;
    if (!v && f->def)
        v = json_incref(f->def);
    if (v)
        json_object_set_new(out, f->name, v);
    else if (f->required)
        return we_err_set(err, WE_EINVAL, "config field '%s' is required%s%s%s", f->name,
                          f->env ? " (or set " : "", f->env ? f->env : "", f->env ? ")" : "");
    return 0;
}

int we_manifest_resolve_config(const we_manifest *m, json_t *db_config, json_t *file_config,
                               json_t **out, we_err *err)
{
    int rc = we_manifest_check_config(m, "config", db_config, err);
    if (rc == 0)
        rc = we_manifest_check_config(m, "plugins.toml", file_config, err);
    if (rc != 0)
        return rc;
    json_t *cfg = json_object();
    for (size_t i = 0; i < m->n_fields && rc == 0; i++)
        rc = resolve_field(&m->fields[i], db_config, file_config, cfg, err);
    if (rc != 0) {
        json_decref(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

json_t *we_manifest_mask_secrets(const we_manifest *m, json_t *config)
{
    if (!config)
        return NULL;
    json_t *copy = json_deep_copy(config);
    for (size_t i = 0; copy && json_is_object(copy) && i < m->n_fields; i++) {
        if (m->fields[i].secret && set_value(copy, m->fields[i].name))
            json_object_set_new(copy, m->fields[i].name, json_string("********"));
    }
    return copy;
}
