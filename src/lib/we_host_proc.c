/*
 * Plugin processes: starting one, its two reader threads, writing to it and
 * reaping it.
 *
 * Start: fork, then in the child only async-signal-safe calls: its own
 * process group (so a kill reaches what it starts), PR_SET_PDEATHSIG(SIGKILL)
 * as a second guard against orphans besides stdin's end-of-file, stdio moved
 * onto the protocol pipes, every other descriptor closed, SIGPIPE back to
 * default, chdir to the plugin's directory and execve of ./<executable> with
 * the host's environment plus the magic cookie. A close-on-exec pipe carries
 * an exec failure back. Only the supervisor thread forks: the death signal
 * follows the thread that forked, and that thread lives as long as the host.
 *
 * The plugin's stdin is one end of a socket pair rather than a pipe, so the
 * host can write with MSG_NOSIGNAL and never depends on SIGPIPE being
 * ignored. Writes are non-blocking with a deadline, under the process's write
 * lock so concurrent messages never interleave.
 *
 * Readers: one thread reads stdout and hands each line to the RPC layer
 * (we_host_rpc.c); a line over WE_PLUGIN_MAX_MESSAGE is a protocol violation.
 * One thread reads stderr and re-logs each line with plugin=<id>. Both poll
 * a wake pipe as well, which the reaper writes after the child is gone, so a
 * grandchild holding the pipes open cannot keep them alive.
 */
#include "we_buf.h"
#include "we_host_int.h"
#include "we_log.h"
#include "we_util.h"

#include <webencode/plugin.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define STDERR_LINE_MAX (64 * 1024)
#define LOG_FIELDS_MAX 16

/* --- the child ------------------------------------------------------------- */

typedef struct child_args {
    const char *dir;
    char *argv[2];
    char **envp;
    int in, out, err, report;
    pid_t parent;
} child_args;

typedef struct exec_report {
    int stage; /* 1 chdir, 2 execve, 3 setup */
    int err;
} exec_report;

static _Noreturn void child_fail(int report, int stage)
{
    exec_report r = {stage, errno};
    ssize_t n = write(report, &r, sizeof r);
    (void)n;
    _exit(127);
}

/* Moves fd to target; fds are first lifted above 9 so none clobbers another. */
static void child_stdio(child_args *a)
{
    int fds[3] = {a->in, a->out, a->err};
    for (int i = 0; i < 3; i++)
        if ((fds[i] = fcntl(fds[i], F_DUPFD, 10)) < 0)
            child_fail(a->report, 3);
    if ((a->report = fcntl(a->report, F_DUPFD_CLOEXEC, 10)) < 0)
        child_fail(a->report, 3);
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0)
            child_fail(a->report, 3);
    if (dup3(a->report, 3, O_CLOEXEC) < 0)
        child_fail(a->report, 3);
    a->report = 3;
    if (close_range(4, ~0U, 0) != 0)
        for (int fd = 4; fd < 65536; fd++)
            close(fd);
}

static _Noreturn void child_exec(child_args *a)
{
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != a->parent)
        _exit(127); /* the host is already gone */
    child_stdio(a);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, NULL);
    if (chdir(a->dir) != 0)
        child_fail(a->report, 1);
    execve(a->argv[0], a->argv, a->envp);
    child_fail(a->report, 2);
}

/* --- spawning --------------------------------------------------------------- */

/* True when entry is NAME=… for the given "NAME=" prefix. */
static bool env_is(const char *entry, const char *prefix)
{
    return strncmp(entry, prefix, strlen(prefix)) == 0;
}

/* The host's environment with the magic cookie set and WEBENCODE_HOST_CWD
 * naming the host's working directory (plugins run in their own directory,
 * so they resolve relative settings against it). Array only; the strings are
 * environ's and static buffers. Called on the supervisor thread alone. */
static char **child_env(void)
{
    static char cookie[] = WE_PLUGIN_MAGIC_ENV "=" WE_PLUGIN_MAGIC_VALUE;
    static char cwd[PATH_MAX + 32] = "";
    if (!cwd[0]) {
        char dir[PATH_MAX];
        snprintf(cwd, sizeof cwd, "WEBENCODE_HOST_CWD=%s", getcwd(dir, sizeof dir) ? dir : "/");
    }
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    WE_ASSERT(env != NULL);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!env_is(environ[i], WE_PLUGIN_MAGIC_ENV "=") &&
            !env_is(environ[i], "WEBENCODE_HOST_CWD="))
            env[k++] = environ[i];
    env[k++] = cookie;
    env[k++] = cwd;
    return env;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

typedef struct pipes {
    int in[2], out[2], err[2], report[2], wake[2];
} pipes;

static void pipes_close(pipes *ps)
{
    int *all = &ps->in[0];
    for (size_t i = 0; i < sizeof *ps / sizeof(int); i++)
        close_fd(&all[i]);
}

static int pipes_open(pipes *ps, we_err *err)
{
    memset(ps, -1, sizeof *ps);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ps->in) != 0 ||
        pipe2(ps->out, O_CLOEXEC) != 0 || pipe2(ps->err, O_CLOEXEC) != 0 ||
        pipe2(ps->report, O_CLOEXEC) != 0 || pipe2(ps->wake, O_CLOEXEC) != 0) {
        int e = errno;
        pipes_close(ps);
        return we_err_set(err, WE_EIO, "cannot create pipes: %s", strerror(e));
    }
    return 0;
}

/* Waits for the exec report: 0 once the child has exec'd. */
static int exec_result(we__plugin *p, pid_t pid, int report_fd, we_err *err)
{
    exec_report r;
    ssize_t n;
    do
        n = read(report_fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof r)
        return 0;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    static const char *const what[] = {"", "cannot enter directory", "cannot execute",
                                       "cannot set up"};
    return we_err_set(err, WE_EIO, "%s %s/%s: %s", what[r.stage >= 1 && r.stage <= 3 ? r.stage : 3],
                      p->dir, p->man->executable, strerror(r.err));
}

static int fork_exec(we__plugin *p, pipes *ps, pid_t *pid, we_err *err)
{
    char exe[4096];
    snprintf(exe, sizeof exe, "./%s", p->man->executable);
    child_args a = {.dir = p->dir,
                    .argv = {exe, NULL},
                    .envp = child_env(),
                    .in = ps->in[1],
                    .out = ps->out[1],
                    .err = ps->err[1],
                    .report = ps->report[1],
                    .parent = getpid()};
    *pid = fork();
    if (*pid == 0)
        child_exec(&a);
    int e = errno;
    free(a.envp);
    close_fd(&ps->in[1]);
    close_fd(&ps->out[1]);
    close_fd(&ps->err[1]);
    close_fd(&ps->report[1]);
    if (*pid < 0)
        return we_err_set(err, WE_EIO, "fork: %s", strerror(e));
    int rc = exec_result(p, *pid, ps->report[0], err);
    close_fd(&ps->report[0]);
    return rc;
}

static void *out_main(void *arg);
static void *err_main(void *arg);

static we__proc *proc_new(we_host *h, we__plugin *p, pid_t pid, pipes *ps)
{
    we__proc *pr = calloc(1, sizeof *pr);
    WE_ASSERT(pr != NULL);
    pr->h = h;
    pr->p = p;
    pr->refs = 1;
    pr->pid = pid;
    pr->in_fd = ps->in[0];
    pr->out_fd = ps->out[0];
    pr->err_fd = ps->err[0];
    pr->wake[0] = ps->wake[0];
    pr->wake[1] = ps->wake[1];
    memset(ps, -1, sizeof *ps);
    fcntl(pr->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(pr->err_fd, F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&pr->w_mu, NULL);
    atomic_init(&pr->broken, false);
    pr->started_ms = we__now();
    return pr;
}

int we__spawn(we_host *h, we__plugin *p, we__proc **out, we_err *err)
{
    pipes ps;
    pid_t pid;
    int rc = pipes_open(&ps, err);
    if (rc != 0)
        return rc;
    if ((rc = fork_exec(p, &ps, &pid, err)) != 0) {
        pipes_close(&ps);
        return rc;
    }
    we__proc *pr = proc_new(h, p, pid, &ps);
    pr->out_started = pthread_create(&pr->out_thr, NULL, out_main, pr) == 0;
    pr->err_started = pthread_create(&pr->err_thr, NULL, err_main, pr) == 0;
    if (!pr->out_started || !pr->err_started) {
        int status;
        we__proc_reap(pr, &status);
        pthread_mutex_lock(&h->mu);
        we__proc_unref(pr);
        pthread_mutex_unlock(&h->mu);
        return we_err_set(err, WE_EIO, "cannot start reader threads for plugin %s", p->id);
    }
    *out = pr;
    return 0;
}

/* --- lifetime -------------------------------------------------------------------- */

void we__proc_unref(we__proc *pr)
{
    if (!pr || --pr->refs > 0)
        return;
    WE_ASSERT(pr->calls == NULL);
    close_fd(&pr->in_fd);
    close_fd(&pr->out_fd);
    close_fd(&pr->err_fd);
    close_fd(&pr->wake[0]);
    close_fd(&pr->wake[1]);
    pthread_mutex_destroy(&pr->w_mu);
    free(pr);
}

void we__proc_fail(we__proc *pr, const char *fmt, ...)
{
    if (!pr->dead && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pr->why, sizeof pr->why, fmt, ap);
        va_end(ap);
    }
    pr->dead = true;
    atomic_store(&pr->broken, true);
    we__kick(pr->h);
}

bool we__proc_exited(we__proc *pr)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pr->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

void we__proc_reap(we__proc *pr, int *status)
{
    atomic_store(&pr->broken, true);
    /* The group first: the leader, even as a zombie, keeps its id reserved. */
    kill(-pr->pid, SIGKILL);
    kill(pr->pid, SIGKILL);
    *status = 0;
    while (waitpid(pr->pid, status, 0) < 0 && errno == EINTR) {
    }
    ssize_t n = write(pr->wake[1], "x", 1);
    (void)n;
    if (pr->out_started)
        pthread_join(pr->out_thr, NULL);
    if (pr->err_started)
        pthread_join(pr->err_thr, NULL);
    pr->out_started = pr->err_started = false;
}

void we__exit_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(buf, n, "killed by signal %d (SIG%s)", WTERMSIG(status), abbrev ? abbrev : "?");
    } else {
        snprintf(buf, n, "ended with wait status %d", status);
    }
}

/* --- writing ---------------------------------------------------------------------- */

/* Takes the write lock before deadline (mono ms): a writer stuck on a plugin
 * that stopped reading must not hold every other writer past its own. */
static bool lock_writes(we__proc *pr, int64_t deadline_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t left = deadline_ms - we__now();
    if (left < 0)
        left = 0;
    ts.tv_sec += (time_t)(left / 1000);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&pr->w_mu, &ts) == 0;
}

int we__proc_write(we__proc *pr, const char *buf, size_t len, int64_t deadline_ms)
{
    if (!lock_writes(pr, deadline_ms))
        return WE_ETIMEOUT;
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0) {
        if (atomic_load(&pr->broken)) {
            rc = WE_EIO;
            break;
        }
        ssize_t n = send(pr->in_fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline_ms - we__now();
            struct pollfd pfd = {.fd = pr->in_fd, .events = POLLOUT};
            if (left <= 0)
                rc = WE_ETIMEOUT;
            else
                poll(&pfd, 1, left < 100 ? (int)left : 100);
        } else if (!(n < 0 && errno == EINTR)) {
            rc = WE_EIO;
        }
    }
    pthread_mutex_unlock(&pr->w_mu);
    return rc;
}

void we__proc_close_input(we__proc *pr)
{
    /* Skipped while a writer holds the lock: `shutdown` and the stop
     * deadline end the process anyway, and the supervisor must not wait. */
    if (pthread_mutex_trylock(&pr->w_mu) != 0)
        return;
    shutdown(pr->in_fd, SHUT_WR);
    pthread_mutex_unlock(&pr->w_mu);
}

/* --- readers ------------------------------------------------------------------------ */

/* 1 when fd is readable (or at EOF), 0 when woken by the reaper. */
static int wait_input(we__proc *pr, int fd)
{
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = pr->wake[0], .events = POLLIN}};
    for (;;) {
        int r = poll(pfd, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || pfd[1].revents)
            return 0;
        if (pfd[0].revents)
            return 1;
    }
}

static void proc_eof(we__proc *pr)
{
    pthread_mutex_lock(&pr->h->mu);
    we__proc_fail(pr, NULL);
    pthread_mutex_unlock(&pr->h->mu);
}

static void proc_violation(we__proc *pr, const char *why)
{
    we_error("plugin protocol violation", WE_S("plugin", pr->p->id), WE_ERR(why));
    pthread_mutex_lock(&pr->h->mu);
    we__proc_fail(pr, "protocol violation: %s", why);
    pthread_mutex_unlock(&pr->h->mu);
}

/* Hands every complete line in acc to the RPC layer; false after a violation. */
static bool out_lines(we__proc *pr, we_buf *acc, size_t *scanned)
{
    size_t start = 0;
    char *nl;
    while ((nl = memchr(acc->data + *scanned, '\n', acc->len - *scanned)) != NULL) {
        size_t end = (size_t)(nl - acc->data);
        if (!we__handle_line(pr, acc->data + start, end - start))
            return false;
        start = *scanned = end + 1;
    }
    *scanned = acc->len - start;
    memmove(acc->data, acc->data + start, *scanned);
    acc->len = *scanned;
    if (acc->len > WE_PLUGIN_MAX_MESSAGE) {
        proc_violation(pr, "a message longer than 16 MiB");
        return false;
    }
    return true;
}

static void *out_main(void *arg)
{
    we__proc *pr = arg;
    we_buf acc;
    we_buf_init(&acc);
    size_t scanned = 0;
    char *chunk = malloc(65536);
    WE_ASSERT(chunk != NULL);
    while (wait_input(pr, pr->out_fd)) {
        ssize_t n = read(pr->out_fd, chunk, 65536);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            proc_eof(pr);
            break;
        }
        we_buf_add(&acc, chunk, (size_t)n);
        if (!out_lines(pr, &acc, &scanned))
            break;
    }
    free(chunk);
    we_buf_fini(&acc);
    return NULL;
}

/* Re-logs a JSON log line: its level, msg and up to LOG_FIELDS_MAX fields. */
static bool relog_json(const char *id, const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *msg = json_object_get(j, "msg");
    if (!json_is_string(msg)) {
        json_decref(j);
        return false;
    }
    we_log_level level = WE_LOG_INFO;
    if (json_is_string(json_object_get(j, "level")))
        we_log_level_parse(json_string_value(json_object_get(j, "level")), &level);
    we_kv kv[LOG_FIELDS_MAX];
    char *vals[LOG_FIELDS_MAX];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        static const char *const skip[] = {"time", "level", "service", "msg", "plugin"};
        bool reserved = false;
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            reserved = reserved || strcmp(key, skip[i]) == 0;
        if (reserved || n == LOG_FIELDS_MAX)
            continue;
        vals[n] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        kv[n] = WE_RAW(key, vals[n]);
        n++;
    }
    for (size_t i = n; i < LOG_FIELDS_MAX; i++)
        kv[i] = WE_KV_LAST;
    we_log_at(level, json_string_value(msg), WE_S("plugin", id), kv[0], kv[1], kv[2], kv[3], kv[4],
              kv[5], kv[6], kv[7], kv[8], kv[9], kv[10], kv[11], kv[12], kv[13], kv[14], kv[15],
              WE_KV_LAST);
    for (size_t i = 0; i < n; i++)
        free(vals[i]);
    json_decref(j);
    return true;
}

static void relog(const char *id, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0 || relog_json(id, line, len))
        return;
    char *text = strndup(line, len); /* stops at a NUL byte, which is fine for a log */
    WE_ASSERT(text != NULL);
    we_log_at(WE_LOG_INFO, text, WE_S("plugin", id), WE_KV_LAST);
    free(text);
}

static void err_lines(we__proc *pr, we_buf *acc, bool flush)
{
    size_t start = 0;
    char *nl;
    while ((nl = memchr(acc->data + start, '\n', acc->len - start)) != NULL) {
        relog(pr->p->id, acc->data + start, (size_t)(nl - (acc->data + start)));
        start = (size_t)(nl - acc->data) + 1;
    }
    if (flush || acc->len - start >= STDERR_LINE_MAX) {
        relog(pr->p->id, acc->data + start, acc->len - start); /* a long line comes in pieces */
        start = acc->len;
    }
    memmove(acc->data, acc->data + start, acc->len - start);
    acc->len -= start;
}

static void *err_main(void *arg)
{
    we__proc *pr = arg;
    we_buf acc;
    we_buf_init(&acc);
    char chunk[4096];
    bool woken = false;
    for (;;) {
        if (!woken && !wait_input(pr, pr->err_fd))
            woken = true; /* the child is gone: drain what it left, then stop */
        ssize_t n = read(pr->err_fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 && !(n < 0 && errno == EAGAIN && !woken))
            break;
        if (n > 0) {
            we_buf_add(&acc, chunk, (size_t)n);
            err_lines(pr, &acc, false);
        }
    }
    if (acc.len > 0)
        err_lines(pr, &acc, true);
    we_buf_fini(&acc);
    return NULL;
}
