/*
 * workers.control.<id>: the kernel's channel to one worker. Messages are
 * delivered on the libnats subscription thread; a handler there may only read
 * the immutable parts and atomics of wk_worker and publish (the connection is
 * thread-safe), and it must never take the process down: every malformed or
 * unknown message is logged at warn and dropped. Actions dispatch through a
 * table: ping (reply with a heartbeat), drain and undrain.
 */
#include "control.h"
#include "we_log.h"
#include "we_util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int wk_control_action(const char *data, size_t len, char *buf, size_t n, we_err *err)
{
    json_error_t jerr;
    const char *action = NULL;
    int rc = 0;
    json_t *root = json_loadb(data ? data : "", len, 0, &jerr);
    if (!root)
        return we_err_set(err, WE_EINVAL, "control message is not JSON: %s", jerr.text);
    if (json_unpack_ex(root, &jerr, 0, "{s:s}", "action", &action) != 0)
        rc = we_err_set(err, WE_EINVAL, "control message: %s", jerr.text);
    else if (strlen(action) >= n)
        rc = we_err_set(err, WE_EINVAL, "control message: action is too long");
    else
        snprintf(buf, n, "%s", action);
    json_decref(root);
    return rc;
}

static void on_ping(wk_worker *w, natsMsg *msg)
{
    we_err err;
    const char *reply = natsMsg_GetReply(msg);
    if (wk_worker_publish(w, reply, "online", &err) != 0)
        we_warn("ping reply failed", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
}

/* Drain: take no new tasks, finish the running ones. The new state goes out
 * at once on the heartbeat subject (the registry) and as the reply. */
static void set_draining(wk_worker *w, natsMsg *msg, bool draining)
{
    we_err err;
    if (!draining && we_stopping())
        draining = true; /* shutting down: stays draining */
    bool was = atomic_exchange(&w->draining, draining);
    if (was != draining)
        we_info(draining ? "worker draining: no new tasks" : "worker undrained: taking tasks",
                WE_S("worker_id", w->cfg.id), WE_I("running", atomic_load(&w->running)));
    if (wk_worker_publish(w, NULL, "online", &err) != 0)
        we_warn("heartbeat after drain change failed", WE_ERR(err.msg));
    if (natsMsg_GetReply(msg) && wk_worker_publish(w, natsMsg_GetReply(msg), "online", &err) != 0)
        we_warn("drain reply failed", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
}

static void on_drain(wk_worker *w, natsMsg *msg)
{
    set_draining(w, msg, true);
}

static void on_undrain(wk_worker *w, natsMsg *msg)
{
    set_draining(w, msg, false);
}

static const struct {
    const char *action;
    void (*handle)(wk_worker *w, natsMsg *msg);
} handlers[] = {
    { "ping", on_ping },
    { "drain", on_drain },
    { "undrain", on_undrain },
};

static int find_handler(const char *action)
{
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (strcmp(handlers[i].action, action) == 0)
            return (int)i;
    return -1;
}

bool wk_control_known(const char *action)
{
    return find_handler(action) >= 0;
}

static void on_control(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    wk_worker *w = closure;
    char action[64];
    we_err err;
    int h = -1;
    if (wk_control_action(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), action,
                          sizeof action, &err) != 0)
        we_warn("control message ignored", WE_ERR(err.msg), WE_S("worker_id", w->cfg.id));
    else if ((h = find_handler(action)) < 0)
        we_warn("control message ignored", WE_ERR("unknown action"), WE_S("action", action),
                WE_S("worker_id", w->cfg.id));
    else
        handlers[h].handle(w, msg);
    natsMsg_Destroy(msg);
}

int wk_control_subscribe(wk_worker *w, we_err *err)
{
    char subject[128];
    snprintf(subject, sizeof subject, "workers.control.%s", w->cfg.id);
    natsStatus s = natsConnection_Subscribe(&w->control, w->nats.nc, subject, on_control, w);
    if (s != NATS_OK)
        return we_err_set(err, WE_EIO, "subscribe to %s: %s", subject, natsStatus_GetText(s));
    return 0;
}
