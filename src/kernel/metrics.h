/*
 * The kernel's own metric observations, exported by GET /metrics.
 */
#ifndef KN_METRICS_H
#define KN_METRICS_H

#include "http.h"

/* Observes one finished request that took seconds (any thread). */
void kn_metrics_observe_request(const kn_req *r, double seconds);

#endif
