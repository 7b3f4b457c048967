/*
 * Notifications: not implemented yet (issue 6). kn_notify_event drops events.
 */
#include "events.h"

void kn_notify_event(kn_ctx *kn, json_t *ev)
{
    (void)kn;
    (void)ev;
}
