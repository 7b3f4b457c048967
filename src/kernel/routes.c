/*
 * The route table: every HTTP route of the kernel in one place, matched in
 * order by http.c. docs/openapi.yaml describes exactly these.
 */
#include "api.h"

const kn_route kn_routes[] = {
    { "GET", "/v1/health", kn_api_health },
    { "GET", "/v1/system/health", kn_api_system_health },
    { "GET", "/v1/workers", kn_api_workers_list },
    { "GET", "/v1/workers/{id}", kn_api_workers_get },
    { "POST", "/v1/workers/{id}/drain", kn_api_workers_drain },
    { "POST", "/v1/workers/{id}/undrain", kn_api_workers_undrain },
    { "GET", "/v1/plugins", kn_api_plugins_list },
    { "POST", "/v1/plugins", kn_api_plugins_register },
    { "GET", "/v1/plugins/{id}", kn_api_plugins_get },
    { "PUT", "/v1/plugins/{id}/config", kn_api_plugins_config },
    { "POST", "/v1/plugins/{id}/enable", kn_api_plugins_enable },
    { "POST", "/v1/plugins/{id}/disable", kn_api_plugins_disable },
    { "POST", "/v1/plugins/{id}/reload", kn_api_plugins_reload },
    { "POST", "/v1/jobs", kn_api_jobs_create },
    { "GET", "/v1/jobs", kn_api_jobs_list },
    { "GET", "/v1/jobs/{id}", kn_api_jobs_get },
    { "DELETE", "/v1/jobs/{id}", kn_api_jobs_delete },
    { "GET", "/v1/jobs/{id}/tasks", kn_api_jobs_tasks },
    { "GET", "/v1/jobs/{id}/logs", kn_api_jobs_logs },
    { "GET", "/v1/jobs/{id}/outputs", kn_api_jobs_outputs },
    { "POST", "/v1/jobs/{id}/cancel", kn_api_jobs_cancel },
    { "POST", "/v1/jobs/{id}/retry", kn_api_jobs_retry },
    { "GET", "/v1/profiles", kn_api_profiles_list },
    { "POST", "/v1/profiles", kn_api_profiles_create },
    { "GET", "/v1/profiles/{id}", kn_api_profiles_get },
    { "PUT", "/v1/profiles/{id}", kn_api_profiles_update },
    { "DELETE", "/v1/profiles/{id}", kn_api_profiles_delete },
    { "GET", "/metrics", kn_api_metrics },
    { NULL, NULL, NULL },
};
