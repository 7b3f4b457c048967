/*
 * /v1/plugins: list and inspect the kernel's plugins, change their
 * configuration (validated against the plugin's config_schema, secret fields
 * write-only), enable, disable, reload one, and register a plugin newly
 * placed in PLUGIN_DIR. Every change is persisted in plugin_configs before
 * the host applies it. Errors use the WE-PLG family.
 */
#include "api.h"
#include "plugins.h"
#include "we_log.h"
#include "we_manifest.h"

#include <string.h>

static enum MHD_Result no_host(kn_req *r)
{
    return kn_reply_error(r, 404, "WE-PLG-001", "no such plugin (the kernel runs no plugins)",
                          NULL);
}

/* 404 unless id names a plugin of this kernel; returns it (new ref). */
static json_t *find(kn_req *r, const char *id)
{
    if (!r->kn->plugins || !we_plugin_id_valid(id))
        return NULL;
    return we_host_get(r->kn->plugins, id);
}

static enum MHD_Result not_found(kn_req *r)
{
    return kn_reply_error(r, 404, "WE-PLG-001", "no such plugin", NULL);
}

/* Maps a host administration failure to a reply. */
static enum MHD_Result admin_error(kn_req *r, int rc, const char *msg)
{
    if (rc == WE_ENOENT)
        return kn_reply_error(r, 404, "WE-PLG-001", msg, NULL);
    if (rc == WE_EINVAL)
        return kn_reply_error(r, 422, "WE-PLG-002", msg, NULL);
    if (rc == WE_EEXIST)
        return kn_reply_error(r, 409, "WE-PLG-004", msg, NULL);
    if (rc == WE_EUNAVAIL || rc == WE_ETIMEOUT)
        return kn_reply_db_error(r, rc, msg);
    /* the plugin did not come up: the change stands, report its state */
    json_t *d = json_pack("{s:s}", "reason", msg);
    return kn_reply_error(r, 502, "WE-PLG-003", "the plugin did not start", d);
}

enum MHD_Result kn_api_plugins_list(kn_req *r)
{
    json_t *items = r->kn->plugins ? we_host_list(r->kn->plugins) : json_array();
    return kn_reply_json(r, 200, json_pack("{s:I, s:o}", "total",
                                           (json_int_t)json_array_size(items), "items", items));
}

enum MHD_Result kn_api_plugins_get(kn_req *r)
{
    json_t *p = find(r, kn_param(r, 0));
    return p ? kn_reply_json(r, 200, p) : not_found(r);
}

enum MHD_Result kn_api_plugins_config(kn_req *r)
{
    enum MHD_Result replied;
    const char *id = kn_param(r, 0);
    json_t *p = find(r, id), *body = NULL, *merged = NULL;
    if (!p)
        return not_found(r);
    json_decref(p);
    if (kn_body_object(r, &body, &replied) != 0)
        return replied;
    json_t *config = json_object_get(body, "config");
    if (!json_is_object(config)) {
        json_decref(body);
        return kn_reply_error(r, 422, "WE-PLG-002", "config: expected an object of schema fields",
                              NULL);
    }
    we_err err;
    int rc = kn_plugins_store_config(r->kn, id, config, &merged, &err);
    json_decref(body);
    if (rc == 0) {
        rc = we_host_set_config(r->kn->plugins, id, merged, &err);
        json_decref(merged);
        we_info("plugin configuration changed", WE_S("plugin", id),
                WE_S("request_id", r->request_id));
    }
    if (rc != 0)
        return admin_error(r, rc, err.msg);
    return kn_reply_json(r, 200, we_host_get(r->kn->plugins, id));
}

typedef int (*admin_fn)(we_host *h, const char *id, we_err *err);

static enum MHD_Result admin(kn_req *r, admin_fn fn, const char *what, int persist_enabled)
{
    const char *id = kn_param(r, 0);
    json_t *p = find(r, id);
    if (!p)
        return not_found(r);
    json_decref(p);
    we_err err;
    int rc = persist_enabled >= 0 ? kn_plugins_store_enabled(r->kn, id, persist_enabled, &err) : 0;
    if (rc == 0)
        rc = fn(r->kn->plugins, id, &err);
    we_info(what, WE_S("plugin", id), WE_B("ok", rc == 0), WE_S("request_id", r->request_id));
    if (rc != 0)
        return admin_error(r, rc, err.msg);
    return kn_reply_json(r, 200, we_host_get(r->kn->plugins, id));
}

enum MHD_Result kn_api_plugins_enable(kn_req *r)
{
    return admin(r, we_host_enable, "plugin enabled", 1);
}

enum MHD_Result kn_api_plugins_disable(kn_req *r)
{
    return admin(r, we_host_disable, "plugin disabled", 0);
}

enum MHD_Result kn_api_plugins_reload(kn_req *r)
{
    return admin(r, we_host_reload, "plugin reloaded", -1);
}

enum MHD_Result kn_api_plugins_register(kn_req *r)
{
    enum MHD_Result replied;
    json_t *body = NULL;
    if (!r->kn->plugins)
        return no_host(r);
    if (kn_body_object(r, &body, &replied) != 0)
        return replied;
    const char *id = json_string_value(json_object_get(body, "id"));
    char idbuf[WE_PLUGIN_ID_MAX + 1];
    if (!id || !we_plugin_id_valid(id)) {
        json_decref(body);
        return kn_reply_error(r, 422, "WE-PLG-002",
                              "id: expected a plugin id ([a-z0-9][a-z0-9-]{0,62}) of a directory "
                              "in PLUGIN_DIR",
                              NULL);
    }
    snprintf(idbuf, sizeof idbuf, "%s", id);
    json_decref(body);
    we_err err;
    int rc = we_host_register(r->kn->plugins, idbuf, &err);
    we_info("plugin registered", WE_S("plugin", idbuf), WE_B("ok", rc == 0),
            WE_S("request_id", r->request_id));
    if (rc == WE_ENOENT)
        return kn_reply_error(r, 404, "WE-PLG-005", err.msg, NULL);
    if (rc != 0 && rc != WE_EIO)
        return admin_error(r, rc, err.msg);
    json_t *p = we_host_get(r->kn->plugins, idbuf);
    return p ? kn_reply_json(r, 201, p) : admin_error(r, rc, err.msg);
}
