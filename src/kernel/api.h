/*
 * Route handlers, one api_<resource>.c each; the table lives in routes.c.
 */
#ifndef KN_API_H
#define KN_API_H

#include "http.h"

enum MHD_Result kn_api_health(kn_req *r);
enum MHD_Result kn_api_system_health(kn_req *r);
enum MHD_Result kn_api_workers_list(kn_req *r);
enum MHD_Result kn_api_workers_get(kn_req *r);
enum MHD_Result kn_api_metrics(kn_req *r);
enum MHD_Result kn_api_plugins_list(kn_req *r);
enum MHD_Result kn_api_plugins_get(kn_req *r);
enum MHD_Result kn_api_plugins_config(kn_req *r);
enum MHD_Result kn_api_plugins_enable(kn_req *r);
enum MHD_Result kn_api_plugins_disable(kn_req *r);
enum MHD_Result kn_api_plugins_reload(kn_req *r);
enum MHD_Result kn_api_plugins_register(kn_req *r);

#endif
