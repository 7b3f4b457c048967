/*
 * Kernel side of plugin hosting. The host (src/lib/we_host*.c) asks for each
 * plugin's stored settings through load_overrides, which reads the
 * plugin_configs row (config merged with secrets, enabled, priority); this
 * runs on whichever thread asked the host to (re)start the plugin, with no
 * host lock held, so a database call is fine. API changes are persisted here
 * first and then handed to the host, so every kernel that reloads sees them.
 */
#include "plugins.h"
#include "we_log.h"
#include "we_manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MASK "********"

static int load_overrides(void *arg, const char *id, json_t **config, bool *enabled,
                          int *priority, we_err *err)
{
    kn_ctx *kn = arg;
    PGconn *c = we_pg_acquire(kn->db, 5000, err);
    if (!c)
        return WE_EUNAVAIL;
    PGresult *r = NULL;
    const char *p[] = { id };
    int rc = we_pg_exec(c, "SELECT (config || secrets)::text, enabled, priority"
                           " FROM plugin_configs WHERE id = $1", 1, p, &r, err);
    we_pg_release(kn->db, c);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1) {
        *config = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        *enabled = PQgetvalue(r, 0, 1)[0] == 't';
        *priority = atoi(PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    return 0;
}

int kn_plugins_start(kn_ctx *kn, we_err *err)
{
    struct stat st;
    if (stat(kn->cfg.plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        we_warn("PLUGIN_DIR is not a directory; running without plugins",
                WE_S("plugin_dir", kn->cfg.plugin_dir));
        return 0;
    }
    we_host_opts o = {
        .plugin_dir = kn->cfg.plugin_dir,
        .host_name = "kernel",
        .host_version = WE_VERSION,
        .types = WE_PT_BIT(WE_PT_AUTH) | WE_PT_BIT(WE_PT_STORAGE) | WE_PT_BIT(WE_PT_LIVE) |
                 WE_PT_BIT(WE_PT_PUBLISHER),
        .load_overrides = load_overrides,
        .overrides_arg = kn,
        .health_interval_ms = (int)kn->cfg.plugin_health_ms,
    };
    int rc = we_host_new(&o, &kn->plugins, err);
    if (rc == 0)
        rc = we_host_start(kn->plugins, err);
    return rc;
}

void kn_plugins_stop(kn_ctx *kn)
{
    we_host_free(kn->plugins);
    kn->plugins = NULL;
}

/* The stored secrets of id (new reference, {} when none). */
static int stored_secrets(PGconn *c, const char *id, json_t **out, we_err *err)
{
    PGresult *r = NULL;
    const char *p[] = { id };
    int rc = we_pg_exec(c, "SELECT secrets::text FROM plugin_configs WHERE id = $1", 1, p, &r,
                        err);
    if (rc != 0)
        return rc;
    *out = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    if (!*out)
        *out = json_object();
    PQclear(r);
    return 0;
}

/* Splits config into plain and secret parts by the manifest; a masked or
 * absent secret keeps its stored value. */
static void split_config(const we_manifest *m, json_t *config, json_t *old_secrets,
                         json_t *plain, json_t *secrets)
{
    const char *k;
    json_t *v;
    json_object_foreach(config, k, v)
    {
        const we_manifest_field *f = we_manifest_field_find(m, k);
        bool secret = f && f->secret;
        if (secret && json_is_string(v) && strcmp(json_string_value(v), MASK) == 0)
            continue;
        json_object_set(secret ? secrets : plain, k, v);
    }
    for (size_t i = 0; i < m->n_fields; i++) {
        const we_manifest_field *f = &m->fields[i];
        json_t *old = json_object_get(old_secrets, f->name);
        if (f->secret && old && !json_object_get(secrets, f->name))
            json_object_set(secrets, f->name, old);
    }
}

static int upsert(PGconn *c, const char *id, const char *type, json_t *plain, json_t *secrets,
                  we_err *err)
{
    char *pj = json_dumps(plain, JSON_COMPACT), *sj = json_dumps(secrets, JSON_COMPACT);
    const char *p[] = { id, type, pj, sj };
    int rc = we_pg_exec(c, "INSERT INTO plugin_configs (id, plugin_type, config, secrets)"
                           " VALUES ($1, $2, $3::jsonb, $4::jsonb)"
                           " ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config,"
                           " secrets = EXCLUDED.secrets, updated_at = now()",
                        4, p, NULL, err);
    free(pj);
    free(sj);
    return rc;
}

int kn_plugins_store_config(kn_ctx *kn, const char *id, json_t *config, json_t **merged,
                            we_err *err)
{
    char dir[4096];
    we_manifest *m = NULL;
    json_t *old = NULL, *plain = json_object(), *secrets = json_object();
    snprintf(dir, sizeof dir, "%s/%s", kn->cfg.plugin_dir, id);
    int rc = we_manifest_load(dir, &m, err);
    PGconn *c = rc == 0 ? we_pg_acquire(kn->db, 5000, err) : NULL;
    if (rc == 0 && !c)
        rc = WE_EUNAVAIL;
    if (rc == 0)
        rc = stored_secrets(c, id, &old, err);
    if (rc == 0) {
        split_config(m, config, old, plain, secrets);
        *merged = json_deep_copy(plain);
        json_object_update(*merged, secrets);
        rc = we_host_validate_config(kn->plugins, id, *merged, err);
        if (rc != 0) {
            json_decref(*merged);
            *merged = NULL;
        }
    }
    if (rc == 0)
        rc = upsert(c, id, we_plugin_type_name(m->type), plain, secrets, err);
    if (rc != 0 && *merged) {
        json_decref(*merged);
        *merged = NULL;
    }
    if (c)
        we_pg_release(kn->db, c);
    json_decref(old);
    json_decref(plain);
    json_decref(secrets);
    we_manifest_free(m);
    return rc;
}

int kn_plugins_store_enabled(kn_ctx *kn, const char *id, bool enabled, we_err *err)
{
    char dir[4096];
    we_manifest *m = NULL;
    snprintf(dir, sizeof dir, "%s/%s", kn->cfg.plugin_dir, id);
    int rc = we_manifest_load(dir, &m, err);
    PGconn *c = rc == 0 ? we_pg_acquire(kn->db, 5000, err) : NULL;
    if (rc == 0 && !c)
        rc = WE_EUNAVAIL;
    if (rc == 0) {
        const char *p[] = { id, we_plugin_type_name(m->type), enabled ? "true" : "false" };
        rc = we_pg_exec(c, "INSERT INTO plugin_configs (id, plugin_type, enabled)"
                           " VALUES ($1, $2, $3::boolean) ON CONFLICT (id) DO UPDATE"
                           " SET enabled = EXCLUDED.enabled, updated_at = now()",
                        3, p, NULL, err);
    }
    if (c)
        we_pg_release(kn->db, c);
    we_manifest_free(m);
    return rc;
}
