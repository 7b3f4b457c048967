/*
 * Clocks, ids, backoff and signal flags. The signal handlers only touch
 * lock-free atomics; threads poll we_stopping() or sleep through
 * we_sleep_ms_or_stop(), which wakes within 50 ms of a stop request.
 */
#include "we_util.h"
#include "we_err.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static atomic_bool g_stop;
static atomic_int g_reload;

int64_t we_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t we_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void we_time_rfc3339(char *buf, size_t n, int64_t epoch_ms)
{
    time_t sec = (time_t)(epoch_ms / 1000);
    struct tm tm;
    char tbuf[24];
    gmtime_r(&sec, &tm);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", tbuf, (int)(epoch_ms % 1000));
}

static void random_bytes(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        WE_ASSERT(r > 0);
        p += r;
        n -= (size_t)r;
    }
}

void we_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    WE_ASSERT(nbytes <= sizeof b);
    random_bytes(b, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

void we_uuid4(char out[37])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

int64_t we_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t d = base_ms;
    for (int i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    unsigned char r;
    random_bytes(&r, 1);
    /* jitter in [-20 %, +20 %] so many clients do not retry in lockstep */
    return d + d * ((int64_t)r - 128) / 640;
}

static void on_stop(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

static void on_hup(int sig)
{
    (void)sig;
    atomic_fetch_add(&g_reload, 1);
}

void we_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool we_stopping(void)
{
    return atomic_load(&g_stop);
}

void we_request_stop(void)
{
    atomic_store(&g_stop, true);
}

bool we_take_reload(void)
{
    int n = atomic_load(&g_reload);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&g_reload, &n, n - 1))
            return true;
    }
    return false;
}

bool we_sleep_ms_or_stop(int64_t ms)
{
    int64_t end = we_now_mono_ms() + ms;
    while (!we_stopping()) {
        int64_t left = end - we_now_mono_ms();
        if (left <= 0)
            return false;
        int64_t step = left < 50 ? left : 50;
        struct timespec ts = { step / 1000, (long)(step % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    return true;
}

void we_hostname(char *buf, size_t n)
{
    if (gethostname(buf, n) != 0 || buf[0] == '\0')
        snprintf(buf, n, "localhost");
    buf[n - 1] = '\0';
}

char *we_strdup(const char *s)
{
    char *p = strdup(s ? s : "");
    WE_ASSERT(p != NULL);
    return p;
}
