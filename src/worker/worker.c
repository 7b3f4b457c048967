/*
 * Heartbeats of the running worker. Callable from the main thread (the timer)
 * and from the NATS delivery thread (a ping reply): it reads only immutable
 * fields and atomics of wk_worker and publishes through the thread-safe
 * natsConnection.
 */
#include "worker.h"
#include "heartbeat.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [{id, type, version, state}] of the hosted plugins, or NULL. */
static json_t *plugin_summary(wk_worker *w)
{
    if (!w->plugins)
        return NULL;
    json_t *all = we_host_list(w->plugins), *out = json_array(), *p;
    size_t i;
    json_array_foreach(all, i, p)
    {
        json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "id",
                                             json_object_get(p, "id"), "type",
                                             json_object_get(p, "type"), "version",
                                             json_object_get(p, "version"), "state",
                                             json_object_get(p, "state")));
    }
    json_decref(all);
    return out;
}

char *wk_worker_heartbeat(wk_worker *w, const char *state)
{
    json_t *plugins = plugin_summary(w);
    wk_hb hb = {
        .id = w->cfg.id,
        .hostname = w->cfg.hostname,
        .version = WE_VERSION,
        .slots = w->cfg.slots,
        .running = atomic_load(&w->running),
        .capabilities = &w->caps.capabilities,
        .encoders = &w->caps.encoders,
        .draining = atomic_load(&w->draining),
        .state = state,
        .interval_ms = w->cfg.heartbeat_ms,
        .ts_ms = we_now_ms(),
        .cpu_count = w->cpu_count,
        .load1 = wk_load1(NULL),
        .mem_total_mb = w->mem_total_mb,
        .ffmpeg_version = w->caps.ffmpeg_version,
        .plugins = plugins,
    };
    char *text = wk_heartbeat_json(&hb);
    json_decref(plugins);
    return text;
}

int wk_worker_publish(wk_worker *w, const char *subject, const char *state, we_err *err)
{
    char subj[128];
    if (!subject) {
        snprintf(subj, sizeof subj, "workers.heartbeat.%s", w->cfg.id);
        subject = subj;
    }
    char *text = wk_worker_heartbeat(w, state);
    if (!text)
        return we_err_set(err, WE_ENOMEM, "heartbeat of worker %s: cannot build JSON", w->cfg.id);
    natsStatus s = natsConnection_Publish(w->nats.nc, subject, text, (int)strlen(text));
    free(text);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "publish to %s: %s", subject, natsStatus_GetText(s));
    return 0;
}
