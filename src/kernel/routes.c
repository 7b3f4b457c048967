/*
 * The route table: every HTTP route of the kernel in one place, matched in
 * order by http.c. docs/openapi.yaml describes exactly these.
 *
 * The last column is the least role a caller needs (DESIGN §8), enforced in
 * one place (http.c) before the handler runs: viewers read; operators
 * create and change jobs, streams and restreams; admins manage plugins,
 * profiles, workers, webhooks, users, tokens and the audit log. KN_ANON
 * routes need no token (only /v1/health and /metrics; AUTH_ANONYMOUS_METRICS
 * can take /metrics back behind a token).
 */
#include "api.h"

const kn_route kn_routes[] = {
    { "GET", "/v1/health", kn_api_health, KN_ANON },
    { "GET", "/v1/system/health", kn_api_system_health, KN_VIEWER },
    { "GET", "/v1/workers", kn_api_workers_list, KN_VIEWER },
    { "GET", "/v1/workers/{id}", kn_api_workers_get, KN_VIEWER },
    { "POST", "/v1/workers/{id}/drain", kn_api_workers_drain, KN_ADMIN },
    { "POST", "/v1/workers/{id}/undrain", kn_api_workers_undrain, KN_ADMIN },
    { "GET", "/v1/plugins", kn_api_plugins_list, KN_VIEWER },
    { "POST", "/v1/plugins", kn_api_plugins_register, KN_ADMIN },
    { "GET", "/v1/plugins/{id}", kn_api_plugins_get, KN_VIEWER },
    { "PUT", "/v1/plugins/{id}/config", kn_api_plugins_config, KN_ADMIN },
    { "POST", "/v1/plugins/{id}/enable", kn_api_plugins_enable, KN_ADMIN },
    { "POST", "/v1/plugins/{id}/disable", kn_api_plugins_disable, KN_ADMIN },
    { "POST", "/v1/plugins/{id}/reload", kn_api_plugins_reload, KN_ADMIN },
    { "POST", "/v1/jobs", kn_api_jobs_create, KN_OPERATOR },
    { "GET", "/v1/jobs", kn_api_jobs_list, KN_VIEWER },
    { "GET", "/v1/jobs/{id}", kn_api_jobs_get, KN_VIEWER },
    { "DELETE", "/v1/jobs/{id}", kn_api_jobs_delete, KN_OPERATOR },
    { "GET", "/v1/jobs/{id}/tasks", kn_api_jobs_tasks, KN_VIEWER },
    { "GET", "/v1/jobs/{id}/logs", kn_api_jobs_logs, KN_VIEWER },
    { "GET", "/v1/jobs/{id}/outputs", kn_api_jobs_outputs, KN_VIEWER },
    { "POST", "/v1/jobs/{id}/cancel", kn_api_jobs_cancel, KN_OPERATOR },
    { "POST", "/v1/jobs/{id}/retry", kn_api_jobs_retry, KN_OPERATOR },
    { "GET", "/v1/profiles", kn_api_profiles_list, KN_VIEWER },
    { "POST", "/v1/profiles", kn_api_profiles_create, KN_ADMIN },
    { "GET", "/v1/profiles/{id}", kn_api_profiles_get, KN_VIEWER },
    { "PUT", "/v1/profiles/{id}", kn_api_profiles_update, KN_ADMIN },
    { "DELETE", "/v1/profiles/{id}", kn_api_profiles_delete, KN_ADMIN },
    { "GET", "/metrics", kn_api_metrics, KN_ANON },
    { NULL, NULL, NULL, KN_ANON },
};
