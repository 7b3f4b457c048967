/*
 * Worker configuration from the environment. Runs on the main thread before
 * any other thread exists; the result is never written again.
 *
 * WORKER_ID becomes a NATS subject token (workers.heartbeat.<id>), so it is
 * held to [A-Za-z0-9_-]{1,64}. Its default is the host name cut at the first
 * dot, since a fully qualified name would split the subject.
 */
#include "config.h"
#include "we_config.h"
#include "we_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool wk_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > WK_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}

static int load_id(wk_config *c, we_err *err)
{
    const char *v = we_cfg_str("WORKER_ID", NULL);
    if (v && !wk_id_valid(v))
        return we_err_set(err, WE_EINVAL,
                          "WORKER_ID=%.80s is invalid: expected 1 to 64 characters from "
                          "A-Z, a-z, 0-9, '_' and '-'",
                          v);
    if (v) {
        snprintf(c->id, sizeof c->id, "%s", v);
        return 0;
    }
    snprintf(c->id, sizeof c->id, "%.*s", (int)strcspn(c->hostname, "."), c->hostname);
    if (!wk_id_valid(c->id))
        return we_err_set(err, WE_EINVAL,
                          "WORKER_ID is not set and the host name \"%.80s\" is not a valid id: "
                          "set WORKER_ID to 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'",
                          c->hostname);
    return 0;
}

static int load_ints(wk_config *c, we_err *err)
{
    long slots, hb, grace;
    int rc = we_cfg_int("WORKER_SLOTS", 1, 1, 64, &slots, err);
    if (rc == 0)
        rc = we_cfg_int("WORKER_HEARTBEAT_MS", 5000, 100, 60000, &hb, err);
    if (rc == 0)
        rc = we_cfg_int("WORKER_STOP_GRACE_S", 30, 0, 3600, &grace, err);
    if (rc == 0) {
        c->slots = (int)slots;
        c->heartbeat_ms = (int)hb;
        c->stop_grace_s = (int)grace;
    }
    return rc;
}

/* The /metrics endpoint (exporter.c): off unless WORKER_METRICS_PORT is set,
 * since several workers may share a machine. */
static int load_metrics(wk_config *c, we_err *err)
{
    long port;
    struct in_addr a;
    c->metrics_addr = we_cfg_str("WORKER_METRICS_ADDR", "127.0.0.1");
    if (inet_pton(AF_INET, c->metrics_addr, &a) != 1)
        return we_err_set(err, WE_EINVAL, "WORKER_METRICS_ADDR=%.80s is not an IPv4 address",
                          c->metrics_addr);
    int rc = we_cfg_int("WORKER_METRICS_PORT", 0, 0, 65535, &port, err);
    c->metrics_port = (int)port;
    return rc;
}

int wk_config_load(wk_config *c, we_err *err)
{
    static const char *const schemes[] = { "nats", "tls", NULL };
    memset(c, 0, sizeof *c);
    we_hostname(c->hostname, sizeof c->hostname);
    int rc = we_cfg_url("NATS_URL", "nats://localhost:4222", schemes, &c->nats_url, err);
    if (rc == 0)
        rc = we_nats_tls_load(c->nats_url, &c->nats_tls, err);
    if (rc == 0)
        rc = load_id(c, err);
    if (rc == 0)
        rc = load_ints(c, err);
    if (rc == 0)
        rc = we_cfg_log_level(&c->log_level, err);
    if (rc == 0)
        rc = load_metrics(c, err);
    c->ffmpeg = we_cfg_str("FFMPEG_PATH", "ffmpeg");
    c->plugin_dir = we_cfg_str("PLUGIN_DIR", "./plugins");
    return rc;
}
