/*
 * kn_event_emit: one envelope per domain event, fanned out to SSE (through
 * core NATS, so every kernel's clients see it), webhooks and notifications.
 * Called on any thread after a commit; publishing is non-blocking.
 */
#include "events.h"

#include "we_log.h"
#include "we_util.h"

#include <stdio.h>

json_t *kn_event_new(const char *type, const char *resource_type, const char *resource_id,
                     const char *user_id, json_t *data)
{
    char id[37], ts[40];
    we_uuid4(id);
    we_time_rfc3339(ts, sizeof ts, we_now_ms());
    return json_pack("{s:s, s:s, s:s, s:{s:s?, s:s?}, s:s?, s:o}", "id", id, "type", type, "time",
                     ts, "resource", "type", resource_type, "id", resource_id, "user_id", user_id,
                     "data", data ? data : json_object());
}

static void publish_ui(kn_ctx *kn, const char *type, json_t *ev)
{
    we_nats *n = kn_nats_get(kn);
    if (!n || !n->nc)
        return;
    char subject[160];
    snprintf(subject, sizeof subject, "ui.events.%s", type);
    char *s = json_dumps(ev, JSON_COMPACT);
    if (!s)
        return;
    natsStatus st = natsConnection_PublishString(n->nc, subject, s);
    if (st != NATS_OK)
        we_debug("event not relayed", WE_S("type", type), WE_S("error", natsStatus_GetText(st)));
    free(s);
}

void kn_event_emit(kn_ctx *kn, const char *type, const char *resource_type,
                   const char *resource_id, const char *user_id, json_t *data)
{
    json_t *ev = kn_event_new(type, resource_type, resource_id, user_id, data);
    if (!ev) {
        we_error("event dropped", WE_S("type", type), WE_ERR("cannot build the envelope"));
        return;
    }
    publish_ui(kn, type, ev);
    kn_webhooks_enqueue(kn, ev);
    kn_notify_event(kn, ev);
    json_decref(ev);
}
