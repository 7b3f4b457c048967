/*
 * libFuzzer target for the host's protocol reader (src/lib/we_host_rpc.c,
 * we__handle_line): the bytes a plugin writes on stdout, split into lines,
 * against a process with three calls in flight (a user call, a handshake and
 * a health check). Any input must end in responses applied, progress
 * queued, or a protocol violation — never a crash, a leak or a call left in
 * an impossible state. The process plumbing of the other host files is
 * replaced by the stubs below, so no process is started.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc/lib -Iinclude \
 *     tests/fuzz/fuzz_rpc.c src/lib/we_host_rpc.c src/lib/we_err.c src/lib/we_log.c \
 *     src/lib/we_buf.c src/lib/we_util.c $(pkg-config --cflags --libs jansson) -o fuzz_rpc
 *   ./fuzz_rpc -max_total_time=60 tests/fuzz/corpus/rpc
 */
#include "we_host_int.h"
#include "we_log.h"
#include "we_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- stubs for the rest of the host ------------------------------------------ */

static int handshakes_done, healths_done;

int64_t we__now(void)
{
    return we_now_mono_ms();
}
void we__cond_init(pthread_cond_t *c)
{
    pthread_cond_init(c, NULL);
}
void we__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms)
{
}
void we__kick(we_host *h)
{
}
we__plugin *we__find(we_host *h, const char *id)
{
    return NULL;
}
void we__handshake_done(we_host *h, we__proc *pr, we__call *c)
{
    handshakes_done++;
}
void we__health_done(we_host *h, we__proc *pr, we__call *c)
{
    healths_done++;
}
void we__proc_fail(we__proc *pr, const char *fmt, ...)
{
    pr->dead = true;
}
void we__proc_unref(we__proc *pr)
{
}
int we__proc_write(we__proc *pr, const char *buf, size_t len, int64_t deadline_ms)
{
    return 0;
}
const char *we_pstate_name(we_pstate s)
{
    return "healthy";
}

/* --- the target ----------------------------------------------------------------- */

static we__call *heap_call(we__proc *pr, we__call_kind kind, int64_t id)
{
    we__call *c = malloc(sizeof *c);
    we__call_init(c, kind, 60000);
    c->id = id;
    we__call_link(pr, c);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        we_log_init("fuzz", WE_LOG_FATAL); /* violations are expected, not news */
        quiet = true;
    }
    we_host h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.mu, NULL);
    we__plugin p;
    memset(&p, 0, sizeof p);
    p.id = "fuzz";
    we__proc pr;
    memset(&pr, 0, sizeof pr);
    pr.h = &h;
    pr.p = &p;
    pr.next_id = 4;
    we__call user;
    we__call_init(&user, WE__CALL_USER, 60000);
    user.id = 1;
    we__call_link(&pr, &user);
    heap_call(&pr, WE__CALL_HANDSHAKE, 0);
    heap_call(&pr, WE__CALL_HEALTH, 2);

    const char *s = (const char *)data, *end = s + size;
    while (s < end && !pr.dead) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (len > 0 && !we__handle_line(&pr, s, len))
            break;
        s += len + 1;
    }
    we__calls_fail_all(&pr, "ended"); /* completes what is left, frees heap calls */
    if (!user.done)
        abort(); /* every call must be completed by now */
    we__call_fini(&user);
    pthread_mutex_destroy(&h.mu);
    return 0;
}
