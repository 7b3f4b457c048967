/*
 * Child processes for FFmpeg probes. posix_spawnp (vfork + exec underneath)
 * starts the program with stdin and, unless asked for, stderr on /dev/null and
 * stdout on a close-on-exec pipe; exec failures such as a missing program come
 * back as the spawn's error. The caller's thread polls the pipe in 50 ms steps
 * so a stop request or the deadline ends the wait promptly; on either the
 * child's process group is killed and the child reaped. No state outlives a
 * call.
 */
#include "proc.h"
#include "we_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Its own process group, so a kill reaches what a wrapper script started;
 * SIGPIPE back to default (we ignore it, and SIG_IGN would survive exec). */
static void spawn_attr(posix_spawnattr_t *attr)
{
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_init(attr);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(attr, 0);
    posix_spawnattr_setsigdefault(attr, &def);
}

static int spawn(char *const argv[], bool with_stderr, int out_fd, pid_t *pid, we_err *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    spawn_attr(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (with_stderr)
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == 0)
        return 0;
    return we_err_set(err, rc == ENOENT ? WE_ENOENT : WE_EIO, "%s: %s", argv[0], strerror(rc));
}

/* Waits up to ms for fd to become readable; 1 readable, 0 not yet. */
static int wait_readable(int fd, int64_t ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, (int)(ms < 50 ? ms : 50));
    return n > 0 ? 1 : 0;
}

static int check_deadline(int64_t deadline, const char *prog, we_err *err)
{
    if (we_stopping())
        return we_err_set(err, WE_ESTATE, "%s: stopped on request", prog);
    if (we_now_mono_ms() >= deadline)
        return we_err_set(err, WE_ETIMEOUT, "%s: no exit before the deadline", prog);
    return 0;
}

/* Reads fd until end of file, keeping at most max bytes in out. */
static int drain(int fd, int64_t deadline, size_t max, we_buf *out, const char *prog, we_err *err)
{
    char chunk[4096];
    for (;;) {
        int rc = check_deadline(deadline, prog, err);
        if (rc != 0)
            return rc;
        if (!wait_readable(fd, deadline - we_now_mono_ms()))
            continue;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return we_err_set(err, WE_EIO, "%s: reading output: %s", prog, strerror(errno));
        if (n > 0 && out && out->len < max)
            we_buf_add(out, chunk, (size_t)n < max - out->len ? (size_t)n : max - out->len);
    }
}

/* Waits for the child to exit (it closed its output, so this is quick). */
static int reap(pid_t pid, int64_t deadline, int *status, const char *prog, we_err *err)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return we_err_set(err, WE_EIO, "%s: waitpid: %s", prog, strerror(errno));
        int rc = check_deadline(deadline, prog, err);
        if (rc != 0)
            return rc;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void kill_and_reap(pid_t pid)
{
    kill(-pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

int wk_proc_run(char *const argv[], const wk_proc_opts *o, we_buf *out, int *exit_code, we_err *err)
{
    int fds[2] = { -1, -1 };
    pid_t pid = -1;
    int status = 0, rc;
    int64_t deadline = we_now_mono_ms() + o->timeout_ms;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = we_err_set(err, WE_EIO, "%s: pipe: %s", argv[0], strerror(errno));
        goto done;
    }
    rc = spawn(argv, o->with_stderr, fds[1], &pid, err);
    close(fds[1]);
    if (rc != 0)
        goto done;
    rc = drain(fds[0], deadline, o->max_out, out, argv[0], err);
    if (rc == 0)
        rc = reap(pid, deadline, &status, argv[0], err);
    if (rc != 0)
        kill_and_reap(pid);
    else
        *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
done:
    if (fds[0] >= 0)
        close(fds[0]);
    return rc;
}
