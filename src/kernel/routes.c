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
    { "GET", "/v1/audit", kn_api_audit_list, KN_ADMIN },
    { "GET", "/v1/errors", kn_api_errors_list, KN_ADMIN },
    { "GET", "/v1/errors/{id}", kn_api_errors_get, KN_ADMIN },
    { "POST", "/v1/errors/{id}/resolve", kn_api_errors_resolve, KN_ADMIN },
    { "GET", "/v1/notifications", kn_api_notifications_list, KN_VIEWER },
    { "POST", "/v1/notifications/read-all", kn_api_notifications_read_all, KN_VIEWER },
    { "POST", "/v1/notifications/{id}/read", kn_api_notifications_read, KN_VIEWER },
    { "DELETE", "/v1/notifications/{id}", kn_api_notifications_delete, KN_VIEWER },
    { "GET", "/v1/auth/me", kn_api_auth_me, KN_VIEWER },
    { "GET", "/v1/users", kn_api_users_list, KN_ADMIN },
    { "POST", "/v1/users", kn_api_users_create, KN_ADMIN },
    { "PATCH", "/v1/users/{id}", kn_api_users_update, KN_ADMIN },
    { "DELETE", "/v1/users/{id}", kn_api_users_delete, KN_ADMIN },
    { "PUT", "/v1/users/{id}/password", kn_api_users_password, KN_ADMIN },
    { "GET", "/v1/tokens", kn_api_tokens_list, KN_ADMIN },
    { "POST", "/v1/tokens", kn_api_tokens_create, KN_ADMIN },
    { "DELETE", "/v1/tokens/{id}", kn_api_tokens_revoke, KN_ADMIN },
    { "GET", "/v1/events", kn_api_events, KN_VIEWER },
    { "GET", "/v1/webhooks", kn_api_webhooks_list, KN_ADMIN },
    { "POST", "/v1/webhooks", kn_api_webhooks_create, KN_ADMIN },
    { "GET", "/v1/webhooks/{id}", kn_api_webhooks_get, KN_ADMIN },
    { "PUT", "/v1/webhooks/{id}", kn_api_webhooks_update, KN_ADMIN },
    { "DELETE", "/v1/webhooks/{id}", kn_api_webhooks_delete, KN_ADMIN },
    { "GET", "/v1/webhooks/{id}/deliveries", kn_api_webhooks_deliveries, KN_ADMIN },
    { "POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", kn_api_webhooks_redeliver, KN_ADMIN },
    { "POST", "/v1/webhooks/{id}/test", kn_api_webhooks_test, KN_ADMIN },
    { "GET", "/metrics", kn_api_metrics, KN_ANON },
    { NULL, NULL, NULL, KN_ANON },
};
