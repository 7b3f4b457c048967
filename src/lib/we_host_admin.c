/*
 * Discovery and administration of plugins: reading PLUGIN_DIR and
 * plugins.toml, we_host_start, reload, enable, disable, register and
 * configuration changes.
 *
 * None of this touches a process. The calling thread reads what a change
 * needs (manifest, plugins.toml, load_overrides, the resolved configuration)
 * without any lock, hands the result to the supervisor as the plugin's
 * `pending` change with a sequence number, kicks it, and waits on h->changed
 * until the plugin has settled past that number (we_host_sup.c applies
 * changes once the old process is gone).
 */
#include "we_host_int.h"
#include "we_log.h"
#include "we_toml.h"
#include "we_util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* --- plugins.toml ------------------------------------------------------------------------ */

/* Checks one [plugins.<id>] table. */
static int ptoml_section(const we_toml *t, const char *id, json_t *sec, we_err *err)
{
    char path[512];
    snprintf(path, sizeof path, "plugins.%s", id);
    if (!json_is_object(sec))
        return we_err_set(err, WE_EINVAL, "%s:%d: [%s] must be a table", t->name,
                          we_toml_line(t, path), path);
    const char *key;
    json_t *v;
    json_object_foreach(sec, key, v)
    {
        char kpath[600];
        snprintf(kpath, sizeof kpath, "%s.%s", path, key);
        int line = we_toml_line(t, kpath);
        if (strcmp(key, "enabled") == 0 && !json_is_boolean(v))
            return we_err_set(err, WE_EINVAL, "%s:%d: enabled must be true or false", t->name,
                              line);
        if (strcmp(key, "priority") == 0 &&
            (!json_is_integer(v) || json_integer_value(v) < INT_MIN ||
             json_integer_value(v) > INT_MAX))
            return we_err_set(err, WE_EINVAL, "%s:%d: priority must be an integer", t->name, line);
        if (strcmp(key, "config") == 0 && !json_is_object(v))
            return we_err_set(err, WE_EINVAL, "%s:%d: config must be a table", t->name, line);
        if (strcmp(key, "enabled") != 0 && strcmp(key, "priority") != 0 &&
            strcmp(key, "config") != 0)
            return we_err_set(err, WE_EINVAL, "%s:%d: unknown key '%s'", t->name, line, kpath);
    }
    return 0;
}

static int ptoml_check(const we_toml *t, we_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(t->root, key, v)
    {
        if (strcmp(key, "plugins") != 0)
            return we_err_set(err, WE_EINVAL, "%s:%d: unknown key '%s' (expected [plugins.<id>])",
                              t->name, we_toml_line(t, key), key);
        if (!json_is_object(v))
            return we_err_set(err, WE_EINVAL, "%s:%d: plugins must be a table", t->name,
                              we_toml_line(t, key));
    }
    const char *id;
    json_t *sec;
    json_t *plugins = json_object_get(t->root, "plugins");
    json_object_foreach(plugins, id, sec)
    {
        int rc = ptoml_section(t, id, sec, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* PLUGIN_DIR/plugins.toml's [plugins] table (a new reference), or NULL
 * without the file. */
static int ptoml_load(we_host *h, json_t **out, we_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins.toml", h->o.plugin_dir);
    we_toml *t = NULL;
    *out = NULL;
    int rc = we_toml_load(path, &t, err);
    if (rc == WE_ENOENT)
        return 0;
    if (rc == 0 && (rc = ptoml_check(t, err)) == 0) {
        json_t *plugins = json_object_get(t->root, "plugins");
        *out = plugins ? json_incref(plugins) : json_object();
    }
    we_toml_free(t);
    return rc;
}

/* --- preparing a change ---------------------------------------------------------------- */

typedef struct prep_in {
    json_t *ptoml;  /* [plugins] of plugins.toml, or NULL */
    json_t *db_cfg; /* stored configuration to use (set_config), or NULL */
    bool db_cfg_given;
    json_t *keep_db;   /* the current stored configuration, kept without load_overrides */
    int force_enabled; /* -1, or 0 / 1 */
} prep_in;

static void file_settings(json_t *ptoml, const char *id, we__pending *pd)
{
    json_t *sec = json_object_get(ptoml, id);
    json_t *en = json_object_get(sec, "enabled"), *prio = json_object_get(sec, "priority");
    if (en)
        pd->enabled = json_is_true(en);
    if (prio)
        pd->priority = (int)json_integer_value(prio);
    json_t *cfg = json_object_get(sec, "config");
    pd->file_cfg = cfg ? json_deep_copy(cfg) : NULL;
}

/* The settings for a plugin whose manifest man (stolen) loaded. Problems
 * that keep it from starting end up in pd->error. No lock held. */
static we__pending *prepare(we_host *h, we_manifest *man, const prep_in *in)
{
    we__pending *pd = calloc(1, sizeof *pd);
    WE_ASSERT(pd != NULL);
    pd->man = man;
    pd->enabled = true;
    file_settings(in->ptoml, man->id, pd);
    we_err e = {""};
    if (h->o.load_overrides) {
        if (h->o.load_overrides(h->o.overrides_arg, man->id, &pd->db_cfg, &pd->enabled,
                                &pd->priority, &e) != 0)
            snprintf(pd->error, sizeof pd->error, "stored settings of plugin %s: %.400s", man->id,
                     e.msg);
    } else if (in->keep_db) {
        pd->db_cfg = json_deep_copy(in->keep_db);
    }
    if (in->db_cfg_given) {
        json_decref(pd->db_cfg);
        pd->db_cfg = in->db_cfg ? json_deep_copy(in->db_cfg) : NULL;
    }
    if (in->force_enabled >= 0)
        pd->enabled = in->force_enabled;
    if (!pd->error[0] &&
        we_manifest_resolve_config(man, pd->db_cfg, pd->file_cfg, &pd->config, &e) != 0)
        snprintf(pd->error, sizeof pd->error, "configuration of plugin %s: %.400s", man->id, e.msg);
    return pd;
}

static int load_manifest(we_host *h, const char *id, we_manifest **man, we_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", h->o.plugin_dir, id);
    int rc = we_manifest_load(dir, man, err);
    if (rc != 0)
        return rc;
    if (!(h->o.types & WE_PT_BIT((*man)->type))) {
        rc = we_err_set(err, WE_ESTATE, "plugin %s is a %s plugin, which this host does not run",
                        id, we_plugin_type_name((*man)->type));
        we_manifest_free(*man);
        *man = NULL;
    }
    return rc;
}

/* Hands pd to the supervisor (h->mu held); returns its sequence number. */
static uint64_t submit(we_host *h, we__plugin *p, we__pending *pd)
{
    pd->seq = ++h->next_seq;
    we__pending_free(p->pending);
    p->pending = pd;
    we__kick(h);
    return pd->seq;
}

static int settle_timeout(we_host *h)
{
    return h->o.shutdown_timeout_ms + h->o.handshake_timeout_ms + 2000;
}

/* Waits until p settled past seq (h->mu held); the outcome as a return code. */
static int wait_settled(we_host *h, we__plugin *p, uint64_t seq, int64_t deadline, we_err *err)
{
    while (p->settled_seq < seq && we__now() < deadline && !h->stopping)
        we__cond_wait_until(&h->changed, &h->mu, deadline);
    if (p->settled_seq < seq)
        return we_err_set(err, WE_ETIMEOUT, "plugin %s did not settle in time (it is %s)", p->id,
                          we_pstate_name(p->state));
    if (p->state == WE_PS_HEALTHY || p->state == WE_PS_DEGRADED ||
        (p->state == WE_PS_DISABLED && !p->enabled))
        return 0;
    return we_err_set(err, WE_EIO, "plugin %s is %s: %s", p->id, we_pstate_name(p->state),
                      p->last_error);
}

/* --- discovery ------------------------------------------------------------------------------ */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_manifest(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/plugin.toml", dir, name);
    return name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Sorted names of PLUGIN_DIR's subdirectories that hold a plugin.toml. */
static int scan(we_host *h, char ***names, size_t *n, we_err *err)
{
    DIR *d = opendir(h->o.plugin_dir);
    if (!d)
        return we_err_set(err, WE_EIO, "PLUGIN_DIR %s: %s", h->o.plugin_dir, strerror(errno));
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!has_manifest(h->o.plugin_dir, de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *names = realloc(*names, cap * sizeof **names);
            WE_ASSERT(*names != NULL);
        }
        (*names)[(*n)++] = we_strdup(de->d_name);
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, name_cmp);
    return 0;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static we__plugin *plugin_add(we_host *h, const char *id, we_manifest *man)
{
    we__plugin *p = calloc(1, sizeof *p);
    WE_ASSERT(p != NULL);
    p->id = we_strdup(id);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", h->o.plugin_dir, id);
    p->dir = we_strdup(dir);
    p->man = man;
    p->enabled = true;
    p->state = WE_PS_STARTING;
    if (h->n_plugins == h->cap_plugins) {
        h->cap_plugins = h->cap_plugins ? h->cap_plugins * 2 : 16;
        h->plugins = realloc(h->plugins, h->cap_plugins * sizeof *h->plugins);
        WE_ASSERT(h->plugins != NULL);
    }
    h->plugins[h->n_plugins++] = p;
    return p;
}

/* Adds a plugin found in PLUGIN_DIR and submits its first start; *seq is 0
 * when it was not added. */
static int discover(we_host *h, const char *id, json_t *ptoml, uint64_t *seq, we_err *err)
{
    we_manifest *man = NULL;
    *seq = 0;
    pthread_mutex_lock(&h->mu);
    bool known = we__find(h, id) != NULL;
    pthread_mutex_unlock(&h->mu);
    if (known)
        return we_err_set(err, WE_EEXIST, "plugin %s is already registered", id);
    int rc = load_manifest(h, id, &man, err);
    if (rc != 0)
        return rc;
    prep_in in = {.ptoml = ptoml, .force_enabled = -1};
    we__pending *pd = prepare(h, man, &in);
    pthread_mutex_lock(&h->mu);
    if (we__find(h, id)) {
        pthread_mutex_unlock(&h->mu);
        we__pending_free(pd);
        return we_err_set(err, WE_EEXIST, "plugin %s is already registered", id);
    }
    we__plugin *p = plugin_add(h, id, NULL);
    p->man = pd->man; /* introspection needs a manifest before the change is applied */
    pd->man = NULL;
    *seq = submit(h, p, pd);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void warn_unknown_sections(we_host *h, json_t *ptoml)
{
    const char *id;
    json_t *sec;
    json_object_foreach(ptoml, id, sec)
    {
        if (!we__find(h, id) && !has_manifest(h->o.plugin_dir, id))
            we_warn("plugins.toml names a plugin that was not found", WE_S("plugin", id),
                    WE_S("plugin_dir", h->o.plugin_dir));
    }
}

/* Discovers every plugin in names; seqs[i] is 0 for those skipped. */
static void discover_all(we_host *h, char **names, size_t n, json_t *ptoml, uint64_t *seqs)
{
    for (size_t i = 0; i < n; i++) {
        we_err e = {""};
        int rc = discover(h, names[i], ptoml, &seqs[i], &e);
        if (rc == WE_ESTATE)
            we_debug("plugin skipped", WE_S("plugin", names[i]), WE_ERR(e.msg));
        else if (rc != 0 && rc != WE_EEXIST)
            we_error("plugin manifest invalid", WE_S("plugin", names[i]), WE_ERR(e.msg));
    }
}

/* Waits for every plugin of names whose seqs[i] is set. */
static int wait_all(we_host *h, char **names, size_t n, const uint64_t *seqs, we_err *err)
{
    int64_t deadline = we__now() + settle_timeout(h);
    int first = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        we__plugin *p = seqs[i] ? we__find(h, names[i]) : NULL;
        int rc = p ? wait_settled(h, p, seqs[i], deadline, first ? NULL : err) : 0;
        first = first ? first : rc;
    }
    pthread_mutex_unlock(&h->mu);
    return first;
}

/* plugins.toml and the plugin directories of PLUGIN_DIR; nothing is kept
 * on failure. */
static int read_dir(we_host *h, json_t **ptoml, char ***names, size_t *n, we_err *err)
{
    int rc = ptoml_load(h, ptoml, err);
    if (rc == 0)
        rc = scan(h, names, n, err);
    if (rc != 0) {
        json_decref(*ptoml);
        *ptoml = NULL;
    }
    return rc;
}

int we_host_start(we_host *h, we_err *err)
{
    if (h->started)
        return we_err_set(err, WE_ESTATE, "plugin host already started");
    json_t *ptoml = NULL;
    char **names = NULL;
    size_t n = 0;
    int rc = read_dir(h, &ptoml, &names, &n, err);
    if (rc != 0)
        return rc;
    uint64_t *seqs = calloc(n ? n : 1, sizeof *seqs);
    WE_ASSERT(seqs != NULL);
    discover_all(h, names, n, ptoml, seqs);
    pthread_mutex_lock(&h->mu);
    warn_unknown_sections(h, ptoml);
    pthread_mutex_unlock(&h->mu);
    WE_ASSERT(pthread_create(&h->sup, NULL, we__supervisor, h) == 0);
    h->started = true;
    wait_all(h, names, n, seqs, NULL); /* a plugin that fails is its own problem */
    free(seqs);
    names_free(names, n);
    json_decref(ptoml);
    return 0;
}

/* --- administration ----------------------------------------------------------------------- */

/* The pending change for a reload of p (no lock held; p->id and p->dir are
 * fixed, the rest is read under the lock). */
static we__pending *reload_change(we_host *h, we__plugin *p, json_t *ptoml, const prep_in *tmpl)
{
    we_manifest *man = NULL;
    we_err e = {""};
    prep_in in = *tmpl;
    in.ptoml = ptoml;
    pthread_mutex_lock(&h->mu);
    json_t *keep = p->db_cfg ? json_deep_copy(p->db_cfg) : NULL;
    pthread_mutex_unlock(&h->mu);
    in.keep_db = keep;
    we__pending *pd;
    if (load_manifest(h, p->id, &man, &e) == 0) {
        pd = prepare(h, man, &in);
    } else {
        pd = calloc(1, sizeof *pd);
        WE_ASSERT(pd != NULL);
        pd->no_manifest = true;
        snprintf(pd->error, sizeof pd->error, "%s", e.msg);
        we_error("plugin manifest invalid", WE_S("plugin", p->id), WE_ERR(e.msg));
    }
    json_decref(keep);
    return pd;
}

static we__plugin *find_locked(we_host *h, const char *id, we_err *err)
{
    pthread_mutex_lock(&h->mu);
    we__plugin *p = we__find(h, id);
    pthread_mutex_unlock(&h->mu);
    if (!p)
        we_err_set(err, WE_ENOENT, "no plugin %s", id);
    return p;
}

/* Reloads p with tmpl's settings and waits for it to settle. */
static int change(we_host *h, we__plugin *p, const prep_in *tmpl, we_err *err)
{
    json_t *ptoml = NULL;
    int rc = ptoml_load(h, &ptoml, err);
    if (rc != 0)
        return rc;
    we__pending *pd = reload_change(h, p, ptoml, tmpl);
    json_decref(ptoml);
    pthread_mutex_lock(&h->mu);
    uint64_t seq = submit(h, p, pd);
    rc = wait_settled(h, p, seq, we__now() + settle_timeout(h), err);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int reload_all(we_host *h, we_err *err)
{
    json_t *ptoml = NULL;
    char **names = NULL;
    size_t n = 0;
    int rc = read_dir(h, &ptoml, &names, &n, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&h->mu);
    size_t known = h->n_plugins;
    we__plugin **ps = calloc(known ? known : 1, sizeof *ps);
    WE_ASSERT(ps != NULL);
    memcpy(ps, h->plugins, known * sizeof *ps);
    pthread_mutex_unlock(&h->mu);
    uint64_t *seqs = calloc(known + n + 1, sizeof *seqs);
    char **ids = calloc(known + n + 1, sizeof *ids);
    WE_ASSERT(seqs != NULL && ids != NULL);
    prep_in tmpl = {.force_enabled = -1};
    for (size_t i = 0; i < known; i++) {
        we__pending *pd = reload_change(h, ps[i], ptoml, &tmpl);
        pthread_mutex_lock(&h->mu);
        seqs[i] = submit(h, ps[i], pd);
        pthread_mutex_unlock(&h->mu);
        ids[i] = ps[i]->id;
    }
    discover_all(h, names, n, ptoml, seqs + known);
    for (size_t i = 0; i < n; i++)
        ids[known + i] = names[i];
    rc = wait_all(h, ids, known + n, seqs, err);
    free(ids);
    free(seqs);
    free(ps);
    names_free(names, n);
    json_decref(ptoml);
    return rc;
}

int we_host_reload(we_host *h, const char *id, we_err *err)
{
    if (!id)
        return reload_all(h, err);
    we__plugin *p = find_locked(h, id, err);
    prep_in tmpl = {.force_enabled = -1};
    return p ? change(h, p, &tmpl, err) : WE_ENOENT;
}

int we_host_enable(we_host *h, const char *id, we_err *err)
{
    we__plugin *p = find_locked(h, id, err);
    if (!p)
        return WE_ENOENT;
    pthread_mutex_lock(&h->mu);
    bool running = p->enabled && p->proc && !p->pending;
    pthread_mutex_unlock(&h->mu);
    if (running)
        return 0;
    prep_in tmpl = {.force_enabled = 1};
    return change(h, p, &tmpl, err);
}

int we_host_disable(we_host *h, const char *id, we_err *err)
{
    we__plugin *p = find_locked(h, id, err);
    if (!p)
        return WE_ENOENT;
    we__pending *pd = calloc(1, sizeof *pd);
    WE_ASSERT(pd != NULL);
    pd->stop_only = true;
    pthread_mutex_lock(&h->mu);
    uint64_t seq = submit(h, p, pd);
    int rc = wait_settled(h, p, seq, we__now() + settle_timeout(h), err);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int we_host_register(we_host *h, const char *id, we_err *err)
{
    if (!we_plugin_id_valid(id))
        return we_err_set(err, WE_EINVAL, "'%s' is not a plugin id ([a-z0-9][a-z0-9-]{0,62})", id);
    if (!h->started)
        return we_err_set(err, WE_ESTATE, "plugin host not started");
    json_t *ptoml = NULL;
    uint64_t seq = 0;
    int rc = ptoml_load(h, &ptoml, err);
    if (rc == 0)
        rc = discover(h, id, ptoml, &seq, err);
    json_decref(ptoml);
    if (rc != 0)
        return rc == WE_ESTATE ? WE_EINVAL : rc; /* a type this host does not run */
    pthread_mutex_lock(&h->mu);
    rc = wait_settled(h, we__find(h, id), seq, we__now() + settle_timeout(h), err);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int we_host_validate_config(we_host *h, const char *id, json_t *config, we_err *err)
{
    pthread_mutex_lock(&h->mu);
    we__plugin *p = we__find(h, id);
    int rc = p ? 0 : we_err_set(err, WE_ENOENT, "no plugin %s", id);
    json_t *resolved = NULL;
    if (rc == 0 && config && !json_is_object(config))
        rc = we_err_set(err, WE_EINVAL, "the configuration of plugin %s must be an object", id);
    if (rc == 0)
        rc = we_manifest_resolve_config(p->man, config, p->file_cfg, &resolved, err);
    pthread_mutex_unlock(&h->mu);
    json_decref(resolved);
    return rc;
}

int we_host_set_config(we_host *h, const char *id, json_t *config, we_err *err)
{
    int rc = we_host_validate_config(h, id, config, err);
    if (rc != 0)
        return rc;
    we__plugin *p = find_locked(h, id, err);
    prep_in tmpl = {.db_cfg = config, .db_cfg_given = true, .force_enabled = -1};
    return p ? change(h, p, &tmpl, err) : WE_ENOENT;
}

int we_host_set_priority(we_host *h, const char *id, int priority, we_err *err)
{
    pthread_mutex_lock(&h->mu);
    we__plugin *p = we__find(h, id);
    if (p)
        p->priority = priority;
    pthread_mutex_unlock(&h->mu);
    return p ? 0 : we_err_set(err, WE_ENOENT, "no plugin %s", id);
}
