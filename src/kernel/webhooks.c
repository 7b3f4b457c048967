/*
 * Webhooks: not implemented yet (issue 6). kn_webhooks_enqueue drops events.
 */
#include "events.h"

void kn_webhooks_enqueue(kn_ctx *kn, json_t *ev)
{
    (void)kn;
    (void)ev;
}
