/*
 * Route handlers, one api_<resource>.c each; the table lives in routes.c.
 */
#ifndef KN_API_H
#define KN_API_H

#include "http.h"

/* api_db.c: runs sql on a pooled connection into *out. Returns 0, or -1
 * after queuing the error reply (503 when the database is unreachable)
 * whose MHD result is in *replied. */
int kn_api_query(kn_req *r, const char *sql, int n, const char *const *p, PGresult **out,
                 enum MHD_Result *replied);
/* Runs sql; *out gets the first row's first column parsed as JSON (new
 * reference), or NULL when there is no row or it is NULL. Returns 0 or a
 * WE_E* code (err says why); replies nothing. */
int kn_api_json(kn_req *r, const char *sql, int n, const char *const *p, json_t **out,
                we_err *err);
/* Replies 200 {"total": N, "items": [...]} with the JSON array sql returns
 * (what names the resource in the log if it returns none). */
enum MHD_Result kn_api_reply_list(kn_req *r, const char *sql, int n, const char *const *p,
                                  const char *what);

enum MHD_Result kn_api_health(kn_req *r);
enum MHD_Result kn_api_system_health(kn_req *r);
enum MHD_Result kn_api_workers_list(kn_req *r);
enum MHD_Result kn_api_workers_get(kn_req *r);
enum MHD_Result kn_api_workers_drain(kn_req *r);
enum MHD_Result kn_api_workers_undrain(kn_req *r);
enum MHD_Result kn_api_metrics(kn_req *r);
enum MHD_Result kn_api_plugins_list(kn_req *r);
enum MHD_Result kn_api_plugins_get(kn_req *r);
enum MHD_Result kn_api_plugins_config(kn_req *r);
enum MHD_Result kn_api_plugins_enable(kn_req *r);
enum MHD_Result kn_api_plugins_disable(kn_req *r);
enum MHD_Result kn_api_plugins_reload(kn_req *r);
enum MHD_Result kn_api_plugins_register(kn_req *r);
/* api_jobs.c */
enum MHD_Result kn_api_jobs_create(kn_req *r);
enum MHD_Result kn_api_jobs_list(kn_req *r);
enum MHD_Result kn_api_jobs_get(kn_req *r);
enum MHD_Result kn_api_jobs_delete(kn_req *r);
enum MHD_Result kn_api_jobs_tasks(kn_req *r);
enum MHD_Result kn_api_jobs_logs(kn_req *r);
enum MHD_Result kn_api_jobs_outputs(kn_req *r);
enum MHD_Result kn_api_jobs_cancel(kn_req *r);
enum MHD_Result kn_api_jobs_retry(kn_req *r);
/* sse.c */
enum MHD_Result kn_api_events(kn_req *r);
/* api_profiles.c */
enum MHD_Result kn_api_profiles_list(kn_req *r);
enum MHD_Result kn_api_profiles_create(kn_req *r);
enum MHD_Result kn_api_profiles_get(kn_req *r);
enum MHD_Result kn_api_profiles_update(kn_req *r);
enum MHD_Result kn_api_profiles_delete(kn_req *r);
/* api_audit.c, api_errors.c, api_notifications.c */
enum MHD_Result kn_api_audit_list(kn_req *r);
enum MHD_Result kn_api_errors_list(kn_req *r);
enum MHD_Result kn_api_errors_get(kn_req *r);
enum MHD_Result kn_api_errors_resolve(kn_req *r);
enum MHD_Result kn_api_notifications_list(kn_req *r);
enum MHD_Result kn_api_notifications_read(kn_req *r);
enum MHD_Result kn_api_notifications_read_all(kn_req *r);
enum MHD_Result kn_api_notifications_delete(kn_req *r);
/* api_users.c */
enum MHD_Result kn_api_auth_me(kn_req *r);
enum MHD_Result kn_api_users_list(kn_req *r);
enum MHD_Result kn_api_users_create(kn_req *r);
enum MHD_Result kn_api_users_update(kn_req *r);
enum MHD_Result kn_api_users_delete(kn_req *r);
enum MHD_Result kn_api_users_password(kn_req *r);
enum MHD_Result kn_api_tokens_list(kn_req *r);
enum MHD_Result kn_api_tokens_create(kn_req *r);
enum MHD_Result kn_api_tokens_revoke(kn_req *r);

/* api_webhooks.c */
enum MHD_Result kn_api_webhooks_list(kn_req *r);
enum MHD_Result kn_api_webhooks_create(kn_req *r);
enum MHD_Result kn_api_webhooks_get(kn_req *r);
enum MHD_Result kn_api_webhooks_update(kn_req *r);
enum MHD_Result kn_api_webhooks_delete(kn_req *r);
enum MHD_Result kn_api_webhooks_deliveries(kn_req *r);
enum MHD_Result kn_api_webhooks_redeliver(kn_req *r);
enum MHD_Result kn_api_webhooks_test(kn_req *r);

#endif
