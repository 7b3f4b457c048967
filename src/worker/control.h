/*
 * Control messages on workers.control.<id>: {"action":"ping"} answers with
 * the heartbeat JSON (to the reply subject, or on workers.heartbeat.<id>
 * when there is none). Anything else is logged at warn and ignored.
 */
#ifndef WK_CONTROL_H
#define WK_CONTROL_H

#include "worker.h"

#include <stdbool.h>
#include <stddef.h>

/* The "action" of a control message into buf. WE_EINVAL, with the reason in
 * err, when data is not a JSON object with a string "action" that fits. */
int wk_control_action(const char *data, size_t len, char *buf, size_t n, we_err *err);

/* Whether action has a handler. */
bool wk_control_known(const char *action);

/* Subscribes w to workers.control.<id>; the handlers run on a NATS thread
 * and read w (see worker.h), which must outlive the connection. */
int wk_control_subscribe(wk_worker *w, we_err *err);

#endif
