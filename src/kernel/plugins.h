/*
 * The kernel's plugin host: which pillars it runs (auth, storage, live,
 * publisher), where their stored configuration lives (plugin_configs), and
 * the persistence of configuration changes made over the API.
 */
#ifndef KN_PLUGINS_H
#define KN_PLUGINS_H

#include "kernel.h"

/* Creates and starts kn->plugins from cfg.plugin_dir. A missing or empty
 * PLUGIN_DIR is not an error (the kernel runs without plugins). */
int kn_plugins_start(kn_ctx *kn, we_err *err);
void kn_plugins_stop(kn_ctx *kn);

/* Stores config for plugin id: non-secret fields in plugin_configs.config,
 * secret fields in plugin_configs.secrets. A secret field that is absent or
 * reads "********" keeps its stored value. On success *merged is the full
 * configuration (new reference) ready for we_host_set_config. */
int kn_plugins_store_config(kn_ctx *kn, const char *id, json_t *config, json_t **merged,
                            we_err *err);

/* Persists the enabled flag (POST enable/disable). */
int kn_plugins_store_enabled(kn_ctx *kn, const char *id, bool enabled, we_err *err);

#endif
