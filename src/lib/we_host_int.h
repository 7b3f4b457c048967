/*
 * Internals of the plugin host (we_host*.c); nothing else includes this.
 *
 * Locking: one mutex per host (h->mu) guards every plugin's fields, every
 * process's call list and request ids, and the call records. It is never held
 * across a blocking operation: writes to a plugin go through the process's
 * own write lock (w_mu) with h->mu released, and fork/exec, waitpid and
 * thread joins happen on the supervisor thread without it.
 *
 * Lifetimes: plugins live until we_host_free. A process (we__proc) is
 * reference-counted under h->mu: its plugin holds one reference while it is
 * current, and each thread with a call in flight or a write under way holds
 * one; the supervisor joins its reader threads before dropping the plugin's
 * reference, so whoever drops the last one frees it.
 */
#ifndef WE_HOST_INT_H
#define WE_HOST_INT_H

#include "we_host.h"
#include "we_manifest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct we__proc we__proc;
typedef struct we__plugin we__plugin;

typedef enum we__call_kind {
    WE__CALL_USER = 0, /* a we_host_call: a thread waits on cond */
    WE__CALL_HANDSHAKE,
    WE__CALL_HEALTH,
    WE__CALL_SHUTDOWN,
} we__call_kind;

/* One request in flight. User calls live on the caller's stack; the others
 * on the heap, freed once completed. All fields under h->mu. */
typedef struct we__call {
    struct we__call *prev, *next; /* in proc->calls while linked */
    we__call_kind kind;
    int64_t id;
    int64_t sent_ms, deadline_ms; /* CLOCK_MONOTONIC */
    bool linked, done;
    bool expired; /* completed by the host at its deadline */
    int rc;       /* 0, or the WE_E* the call returns */
    json_t *result;
    we_rpc_error rerr;
    json_t *progress; /* queued $/progress objects (an array), user calls */
    bool cancel_sent;
    pthread_cond_t cond;
} we__call;

struct we__proc {
    we_host *h;
    we__plugin *p;
    int refs; /* under h->mu */
    pid_t pid;
    int in_fd;   /* host -> plugin, a socket written with MSG_NOSIGNAL */
    int out_fd;  /* plugin stdout */
    int err_fd;  /* plugin stderr */
    int wake[2]; /* written at reap: the readers stop */
    pthread_t out_thr, err_thr;
    bool out_started, err_started;
    pthread_mutex_t w_mu; /* serialises writes to in_fd */
    atomic_bool broken;   /* write side unusable; set with dead */
    int64_t started_ms;
    /* under h->mu: */
    int64_t next_id;
    we__call *calls;
    bool dead;     /* to be killed and reaped */
    char why[512]; /* first reason it died, "" for a plain exit */
    bool stopping; /* shutdown sent on purpose: an exit is expected */
    int64_t stop_deadline;
    bool exited; /* waitid saw the exit (not yet reaped) */
    int64_t exited_ms;
};

/* A change handed from an API thread to the supervisor. */
typedef struct we__pending {
    uint64_t seq;
    bool stop_only;   /* disable: keep the settings, stop the process */
    bool no_manifest; /* it did not load: keep every setting, fail with error */
    we_manifest *man; /* NULL: keep the current one */
    json_t *file_cfg; /* plugins.toml config section, or NULL */
    json_t *db_cfg;   /* stored configuration, or NULL */
    json_t *config;   /* resolved; NULL when error is set */
    bool enabled;
    int priority;
    char error[512]; /* why the plugin cannot start, "" when it can */
} we__pending;

struct we__plugin {
    char *id;
    char *dir;
    we_manifest *man;
    json_t *file_cfg, *db_cfg, *config;
    bool enabled;
    int priority;
    we_pstate state;
    char last_error[512]; /* "" when none */
    bool hold;            /* failed for a reason a restart cannot fix */
    we__proc *proc;
    /* from the handshake */
    char *hs_version;
    int hs_api;
    json_t *hs_caps, *hs_methods;
    int64_t up_since; /* mono ms it became healthy, 0 when not running */
    int restarts, restarts_total, health_fails;
    int64_t next_health, restart_at;
    bool health_busy;
    we__pending *pending;
    uint64_t applied_seq, settled_seq;
};

struct we_host {
    we_host_opts o; /* strings owned */
    int *api_versions;
    char api_list[128]; /* "[1]" for messages */
    pthread_mutex_t mu;
    pthread_cond_t kick;    /* wakes the supervisor */
    pthread_cond_t changed; /* broadcast on every state change / settle */
    bool kicked, stopping, started;
    pthread_t sup;
    we__plugin **plugins;
    size_t n_plugins, cap_plugins;
    uint64_t next_seq;
};

/* we_host.c */
int64_t we__now(void);
void we__cond_init(pthread_cond_t *c);
/* Waits on c until woken or deadline (mono ms); h->mu must be held. */
void we__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms);
void we__kick(we_host *h);                        /* h->mu held */
we__plugin *we__find(we_host *h, const char *id); /* h->mu held */

/* we_host_sup.c: the supervisor thread and the state machine (h->mu held
 * unless said otherwise). */
void *we__supervisor(void *arg);
void we__set_state(we_host *h, we__plugin *p, we_pstate s, const char *reason);
void we__handshake_done(we_host *h, we__proc *pr, we__call *c);
void we__health_done(we_host *h, we__proc *pr, we__call *c);
void we__pending_free(we__pending *pd); /* NULL is a no-op */

/* we_host_proc.c: processes. */
int we__spawn(we_host *h, we__plugin *p, we__proc **out, we_err *err); /* no lock */
void we__proc_unref(we__proc *pr);                                     /* h->mu held */
/* Marks pr dead with why (the first reason wins) and kicks the supervisor. */
void we__proc_fail(we__proc *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Kills (unless it exited), reaps and joins the readers; no lock held. */
void we__proc_reap(we__proc *pr, int *status);
/* True when the process has exited (waitid without reaping). */
bool we__proc_exited(we__proc *pr);
/* Writes len bytes before deadline; no h->mu held, a reference held. */
int we__proc_write(we__proc *pr, const char *buf, size_t len, int64_t deadline_ms);
/* Half-closes the plugin's stdin (end-of-file) unless a write is under way. */
void we__proc_close_input(we__proc *pr);
void we__exit_text(int status, char *buf, size_t n);

/* we_host_rpc.c: requests and responses. */
void we__call_init(we__call *c, we__call_kind kind, int timeout_ms);
void we__call_fini(we__call *c);
/* Links c to pr with a fresh id (h->mu held). */
void we__call_link(we__proc *pr, we__call *c);
/* Completes c (h->mu held): unlinks it, stores rc / result / error and wakes
 * its waiter or runs its handler. Steals result. */
void we__call_complete(we__proc *pr, we__call *c, int rc, json_t *result, const we_rpc_error *rerr);
/* Marks pr dead after we__proc_write returned rc (h->mu held). */
void we__write_failed(we__proc *pr, int rc, int waited_ms);
/* Fails every call in flight on pr (h->mu held). */
void we__calls_fail_all(we__proc *pr, const char *why);
/* Completes async calls past their deadline (h->mu held). */
void we__calls_expire(we__proc *pr, int64_t now);
/* The request line for method/params ("\n"-terminated); NULL when too big. */
char *we__request_line(int64_t id, const char *method, json_t *params, int timeout_ms, size_t *len);
/* Sends an async request owned by the host (h->mu held on entry and exit;
 * released while writing). */
void we__send_async(we_host *h, we__proc *pr, we__call_kind kind, const char *method,
                    json_t *params, int timeout_ms);
/* Handles one line from the plugin's stdout (reader thread, no lock). Returns
 * false after a protocol violation (pr is then marked dead). */
bool we__handle_line(we__proc *pr, const char *line, size_t len);
void we__rpc_error_set(we_rpc_error *e, int code, const char *we_code, bool retryable,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
