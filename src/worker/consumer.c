/*
 * The dispatch consumers: binding to the kernel's durable pull consumer
 * dispatch-<cap> of WEBENCODE_WORK (filter jobs.dispatch.<cap>), and one
 * fetch from it.
 *
 * Design: the kernel creates the durables; the worker only binds
 * (jsSubOptions.Stream/.Consumer), so it never creates, changes or deletes
 * one — destroying a bound subscription leaves the durable in place. Until
 * a durable exists the binding is retried every 2 s with one warn line. A
 * fetch asks for one message (the runner calls it only with a free slot,
 * so nothing is prefetched beyond the slots) and long-polls up to the given
 * timeout, so a new message starts at once and a stop or drain is seen
 * within the timeout. A fetch error other than "nothing yet" (the durable
 * was deleted, the stream is gone) drops the binding and binds again; the
 * old subscription is kept until no task holds a message of it, since an
 * ack goes through the message's subscription.
 *
 * Threads: the runner thread only.
 */
#include "consumer.h"
#include "we_log.h"
#include "we_util.h"

#include <stdio.h>
#include <stdlib.h>

#define BIND_RETRY_MS 2000
#define DEFAULT_KEEPALIVE_MS 20000 /* AckWait 60 s / 3, when the consumer info is unavailable */

void wk_consumer_init(wk_consumer *c, const char *cap)
{
    snprintf(c->cap, sizeof c->cap, "%s", cap);
    snprintf(c->subject, sizeof c->subject, "jobs.dispatch.%s", cap);
    snprintf(c->durable, sizeof c->durable, "dispatch-%s", cap);
    c->sub = NULL;
    c->bind_at_ms = 0;
    c->keepalive_ms = DEFAULT_KEEPALIVE_MS;
    c->warned = c->failing = false;
}

/* AckWait / 3 of the consumer, at least 500 ms. (js_GetConsumerInfo, as
 * libnats 3.4.1's natsSubscription_GetConsumerInfo refuses a bound pull
 * subscription with "Invalid Subscription".) */
static int64_t keepalive_ms(const wk_consumer *c, jsCtx *js)
{
    jsConsumerInfo *ci = NULL;
    int64_t ms = DEFAULT_KEEPALIVE_MS;
    if (js_GetConsumerInfo(&ci, js, WK_STREAM, c->durable, NULL, NULL) == NATS_OK && ci->Config &&
        ci->Config->AckWait > 0)
        ms = ci->Config->AckWait / 3 / 1000000;
    jsConsumerInfo_Destroy(ci);
    return ms < 500 ? 500 : ms;
}

void wk_consumer_bind(wk_consumer *c, jsCtx *js)
{
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = WK_STREAM;
    so.Consumer = c->durable;
    natsStatus s = js_PullSubscribe(&c->sub, js, c->subject, c->durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        c->sub = NULL;
        c->bind_at_ms = we_now_mono_ms() + BIND_RETRY_MS;
        if (!c->warned)
            we_warn("dispatch consumer not ready", WE_S("consumer", c->durable),
                    WE_S("stream", WK_STREAM), WE_ERR(natsStatus_GetText(s)), WE_I("code", jerr),
                    WE_I("retry_every_ms", BIND_RETRY_MS));
        c->warned = true;
        return;
    }
    c->keepalive_ms = keepalive_ms(c, js);
    c->warned = c->failing = false;
    we_info("dispatch consumer bound", WE_S("consumer", c->durable), WE_S("subject", c->subject),
            WE_I("in_progress_every_ms", c->keepalive_ms));
}

/* A fetch failed for a reason other than "nothing yet": bind again later. */
static natsSubscription *lose(wk_consumer *c, natsStatus s, jsErrCode jerr)
{
    natsSubscription *old = c->sub;
    const char *detail = nats_GetLastError(NULL);
    we_warn("dispatch consumer lost; binding again", WE_S("consumer", c->durable),
            WE_ERR(detail ? detail : natsStatus_GetText(s)), WE_I("code", jerr));
    c->sub = NULL;
    c->warned = true; /* "not ready" would say the same again */
    c->bind_at_ms = we_now_mono_ms() + BIND_RETRY_MS;
    return old;
}

int wk_consumer_fetch(wk_consumer *c, int64_t timeout_ms, natsMsg **msg, natsSubscription **lost)
{
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    *msg = NULL;
    *lost = NULL;
    natsStatus s = natsSubscription_Fetch(&list, c->sub, 1, timeout_ms, &jerr);
    if (s == NATS_OK && list.Count > 0) {
        *msg = list.Msgs[0];
        list.Msgs[0] = NULL; /* ours now */
    }
    natsMsgList_Destroy(&list);
    if (s == NATS_OK || s == NATS_TIMEOUT || s == NATS_NOT_FOUND) {
        c->failing = false;
        return 0;
    }
    if (s != NATS_CONNECTION_DISCONNECTED && s != NATS_CONNECTION_CLOSED) {
        *lost = lose(c, s, jerr);
        return WE_EIO;
    }
    if (!c->failing) /* libnats reconnects by itself; the binding survives that */
        we_warn("dispatch fetch failed", WE_S("consumer", c->durable),
                WE_ERR(natsStatus_GetText(s)));
    c->failing = true;
    return WE_EIO;
}
