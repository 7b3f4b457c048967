/*
 * Plugin manifests (plugin.toml, docs/plugin-protocol.md §1.1) and the
 * configuration they describe (§1.2): loading and validating a manifest,
 * resolving a plugin's configuration from its sources in order of
 * precedence, and masking secret fields for display.
 */
#ifndef WE_MANIFEST_H
#define WE_MANIFEST_H

#include "we_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The pillars. WE_PT_BIT(t) makes a mask of them (we_host_opts.types). */
typedef enum we_plugin_type {
    WE_PT_AUTH = 0,
    WE_PT_STORAGE,
    WE_PT_ENCODER,
    WE_PT_LIVE,
    WE_PT_PUBLISHER,
    WE_PT_COUNT
} we_plugin_type;
#define WE_PT_BIT(t) (1u << (unsigned)(t))

/* "auth" | "storage" | "encoder" | "live" | "publisher"; "?" when out of range. */
const char *we_plugin_type_name(we_plugin_type t);
/* 0 with *out set, or WE_EINVAL for an unknown name. */
int we_plugin_type_parse(const char *s, we_plugin_type *out);

/* Longest plugin id: [a-z0-9][a-z0-9-]{0,62}. */
#define WE_PLUGIN_ID_MAX 63
bool we_plugin_id_valid(const char *id);

typedef enum we_field_type {
    WE_FT_STRING = 0,
    WE_FT_INTEGER,
    WE_FT_BOOLEAN,
    WE_FT_ARRAY,
} we_field_type;

const char *we_field_type_name(we_field_type t);

/* One [config_schema.<name>] table. */
typedef struct we_manifest_field {
    char *name;
    we_field_type type;
    bool required;
    bool secret;
    json_t *def;       /* the default (type-checked), or NULL */
    char *env;         /* environment variable that supplies the value, or NULL */
    char *description; /* "" when absent */
} we_manifest_field;

typedef struct we_manifest {
    char *id;
    we_plugin_type type;
    char *version;
    int api_version;
    char *description;         /* "" when absent */
    char *executable;          /* a plain file name; the id when absent */
    json_t *capabilities;      /* an object, never NULL */
    we_manifest_field *fields; /* in file order */
    size_t n_fields;
} we_manifest;

/* Validates the manifest text (named name in messages). When dir_id is not
 * NULL the id must equal it. Returns 0 with *out (free with
 * we_manifest_free) or WE_EINVAL with "name:line: message". */
int we_manifest_parse(const char *name, const char *text, size_t len, const char *dir_id,
                      we_manifest **out, we_err *err);

/* Loads dir/plugin.toml; the id must equal dir's last path component.
 * WE_ENOENT when there is no plugin.toml, WE_EIO when it cannot be read. */
int we_manifest_load(const char *dir, we_manifest **out, we_err *err);

void we_manifest_free(we_manifest *m);

/* The schema field called name, or NULL. */
const we_manifest_field *we_manifest_field_find(const we_manifest *m, const char *name);

/* Checks one source of configuration (a JSON object, or NULL for none): every
 * key is a schema field and every non-null value has the field's type.
 * `source` names it in the message ("config", "plugins.toml"). */
int we_manifest_check_config(const we_manifest *m, const char *source, json_t *config, we_err *err);

/* Resolves the configuration: for each field the first of db_config
 * (plugin_configs / the API), file_config (plugins.toml's
 * [plugins.<id>.config]), the environment variable named by `env`, and
 * `default` that has a value (JSON null counts as unset). db_config and
 * file_config are borrowed and may be NULL. Environment values are converted
 * to the field's type (integers in decimal; booleans true/false/1/0/yes/no/
 * on/off; arrays as comma-separated strings). Unknown keys, wrong types and
 * missing required fields are refused naming the field. On success *out is a
 * new object holding every field that has a value. */
int we_manifest_resolve_config(const we_manifest *m, json_t *db_config, json_t *file_config,
                               json_t **out, we_err *err);

/* A new copy of config (borrowed; NULL gives NULL) whose secret fields that
 * are set (not null) read "********". */
json_t *we_manifest_mask_secrets(const we_manifest *m, json_t *config);

#endif
