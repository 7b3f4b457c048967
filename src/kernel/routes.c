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
    { "GET", "/v1/plugins", kn_api_plugins_list },
    { "POST", "/v1/plugins", kn_api_plugins_register },
    { "GET", "/v1/plugins/{id}", kn_api_plugins_get },
    { "PUT", "/v1/plugins/{id}/config", kn_api_plugins_config },
    { "POST", "/v1/plugins/{id}/enable", kn_api_plugins_enable },
    { "POST", "/v1/plugins/{id}/disable", kn_api_plugins_disable },
    { "POST", "/v1/plugins/{id}/reload", kn_api_plugins_reload },
    { "GET", "/metrics", kn_api_metrics },
    { NULL, NULL, NULL },
};
