/*
 * Where a job's input may reach: the plugin's half of the SSRF policy
 * (DESIGN §8; the kernel vets the host at submission, this vets every
 * address actually connected to, redirects and re-resolutions included).
 *
 * Design: an input is local (a path or file:), remote (http:// or
 * https://) or refused (any other FFmpeg protocol — concat:, subfile,
 * ftp:, gopher:, data:, rtmp:, … — failed before FFmpeg or libavformat
 * sees it). Local inputs may use only ENC_LOCAL_PROTOCOLS (no network at
 * all, so a local playlist cannot point at an internal URL). A remote input
 * gets a proxy of its own for the call (egress.c) and may use only
 * ENC_REMOTE_PROTOCOLS, with libavformat's http_proxy pointing at that
 * proxy — for probe in the AVDictionary, for ffmpeg as input options — so
 * every request, redirects included, is vetted there; the proxy being the
 * call's own lets a refusal be reported as the reason the call failed.
 * Opens that do not pass options on fall back to the http_proxy
 * environment variable, which names a process-wide proxy under the same
 * policy (enc_egress_global_start, set up in main() before any thread;
 * no_proxy is removed so nothing bypasses it).
 *
 * Policy (plugin.toml): source_allow_private (SOURCE_ALLOW_PRIVATE, the
 * kernel's variable) lets internal addresses through; source_allow_cidrs
 * (SOURCE_ALLOW_CIDRS) lists internal networks that are allowed anyway,
 * e.g. a media server on the LAN.
 *
 * Threads: a source belongs to its call; the global proxy is started and
 * stopped by the main thread, its policy set once at init.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enc_egress *global_proxy;

/* Proxy events become the plugin's log lines (the host re-logs them with
 * the plugin id). */
static void log_event(void *ud, const char *level, const char *msg, const char *host, int port,
                      const char *addr)
{
    json_t *f = json_pack("{s:s, s:i}", "host", host, "port", port);
    if (f && addr && addr[0])
        json_object_set_new(f, "address", json_string(addr));
    if (f && ud)
        json_object_set_new(f, "proxy", json_string(ud));
    we_plugin_log(level, msg, f);
}

int enc_source_open(we_plugin_call *call, const char *url, enc_source *src)
{
    const enc_state *st = we_plugin_state(call);
    memset(src, 0, sizeof *src);
    src->opts[0] = "-protocol_whitelist";
    switch (enc_input_kind_of(url)) {
    case ENC_INPUT_LOCAL:
        src->opts[1] = ENC_LOCAL_PROTOCOLS;
        return 0;
    case ENC_INPUT_REMOTE:
        break;
    default:
        return we_plugin_fail(call, "WE-JOB-010", false,
                              "input refused: the \"%.*s\" protocol is not allowed (a local path, "
                              "file:, http:// or https:// is); nothing was opened",
                              (int)strcspn(url, ":,"), url);
    }
    int rc = enc_egress_start(&st->policy, log_event, NULL, &src->egress);
    if (rc != 0)
        return we_plugin_fail(call, "WE-JOB-011", true, "cannot start the egress proxy: %s",
                              strerror(rc));
    src->remote = true;
    src->opts[1] = ENC_REMOTE_PROTOCOLS;
    src->opts[2] = "-http_proxy";
    src->opts[3] = enc_egress_url(src->egress);
    return 0;
}

void enc_source_close(enc_source *src)
{
    enc_egress_stop(src->egress);
    src->egress = NULL;
}

int enc_source_refused(we_plugin_call *call, const enc_source *src, const char *detail)
{
    char why[400];
    if (!src || !src->egress || !enc_egress_refusal(src->egress, why, sizeof why))
        return 0;
    return we_plugin_fail(call, "WE-JOB-010", false,
                          "source refused by the worker's egress policy: %s; "
                          "source_allow_cidrs (SOURCE_ALLOW_CIDRS) or source_allow_private "
                          "(SOURCE_ALLOW_PRIVATE) of encoder-ffmpeg would allow it%s%.300s%s",
                          why, detail && detail[0] ? " (" : "", detail ? detail : "",
                          detail && detail[0] ? ")" : "");
}

/* ---- the process-wide proxy ------------------------------------------------------------- */

int enc_egress_global_start(void)
{
    enc_egress_policy deny = {.allow_private = false}; /* until init sets the real one */
    int rc = enc_egress_start(&deny, log_event, "global", &global_proxy);
    if (rc != 0)
        return rc;
    if (setenv("http_proxy", enc_egress_url(global_proxy), 1) < 0 || unsetenv("no_proxy") < 0 ||
        unsetenv("NO_PROXY") < 0) {
        rc = errno;
        enc_egress_global_stop();
    }
    return rc;
}

void enc_egress_global_policy(const enc_egress_policy *policy)
{
    if (global_proxy)
        enc_egress_set_policy(global_proxy, policy);
}

void enc_egress_global_stop(void)
{
    enc_egress_stop(global_proxy);
    global_proxy = NULL;
}
