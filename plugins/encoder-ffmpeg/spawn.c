/*
 * Starting ffmpeg: fork + execv, never a shell.
 *
 * Design: the child gets its own process group (so a kill reaches anything
 * ffmpeg starts, and a terminal's signals do not), PR_SET_PDEATHSIG SIGKILL
 * (if the plugin dies, even by SIGKILL, its ffmpeg dies with it: no plugin
 * outlives its host, and no ffmpeg outlives its plugin), a clean signal
 * mask and default dispositions (the SDK ignores SIGPIPE, which would
 * survive exec), stdin from /dev/null, and pipes only where asked:
 * stdout, stderr, and fd 3 for -progress. Every pipe is created O_CLOEXEC,
 * so concurrent calls never leak each other's fds into their children. A
 * failed exec is reported through one more close-on-exec pipe, so a missing
 * program is an error of the spawn, not an odd exit status. Between fork and
 * exec only async-signal-safe calls are made (the plugin is threaded).
 *
 * PDEATHSIG fires when the *thread* that forked exits; the SDK's pool
 * threads live until every call has finished, so that is the plugin's end.
 *
 * Threads: called from the SDK's pool threads; no shared state.
 */
#include "encoder.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t enc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct pipes {
    int out[2], err[2], fd3[2], exec[2];
    int devnull;
} pipes;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void pipes_close(pipes *p)
{
    for (int i = 0; i < 2; i++) {
        close_fd(&p->out[i]);
        close_fd(&p->err[i]);
        close_fd(&p->fd3[i]);
        close_fd(&p->exec[i]);
    }
    close_fd(&p->devnull);
}

static int pipes_open(pipes *p, bool out, bool err, bool fd3)
{
    memset(p, -1, sizeof *p);
    p->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (p->devnull < 0 || pipe2(p->exec, O_CLOEXEC) < 0 || (out && pipe2(p->out, O_CLOEXEC) < 0) ||
        (err && pipe2(p->err, O_CLOEXEC) < 0) || (fd3 && pipe2(p->fd3, O_CLOEXEC) < 0)) {
        int e = errno;
        pipes_close(p);
        return e;
    }
    return 0;
}

/* In the child: fd onto target, close-on-exec cleared either way. */
static int place(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

static void child_fail(int fd)
{
    int e = errno ? errno : EINVAL;
    if (fd >= 0) {
        ssize_t w = write(fd, &e, sizeof e);
        (void)w;
    }
    _exit(127);
}

/* Runs in the child; never returns. */
static void child(char *const argv[], const char *dir, pipes *p, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigprocmask(SIG_SETMASK, &none, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    setpgid(0, 0);
    /* the error pipe must survive the dup2s onto 0..3 (other threads may have
     * freed a low fd just before it was created) */
    int ex = p->exec[1] > 3 ? p->exec[1] : fcntl(p->exec[1], F_DUPFD_CLOEXEC, 4);
    if (ex < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        child_fail(ex); /* the plugin is already gone */
    /* fd 3 goes last: an earlier target may have been the fd it sits on */
    int fd3 = p->fd3[1] >= 0 ? p->fd3[1] : p->devnull;
    if (fd3 < 3 && (fd3 = fcntl(fd3, F_DUPFD_CLOEXEC, 4)) < 0)
        child_fail(ex);
    if (place(p->devnull, 0) < 0 || place(p->out[1] >= 0 ? p->out[1] : p->devnull, 1) < 0 ||
        place(p->err[1] >= 0 ? p->err[1] : p->devnull, 2) < 0 || place(fd3, 3) < 0)
        child_fail(ex);
    if (dir && chdir(dir) < 0)
        child_fail(ex);
    execv(argv[0], argv);
    child_fail(ex);
}

/* 0 when exec succeeded (the pipe closed empty), else the child's errno. */
static int exec_status(int fd)
{
    int e = 0;
    ssize_t r;
    do
        r = read(fd, &e, sizeof e);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof e ? e : 0;
}

static void child_init(enc_child *c, pipes *p, pid_t pid)
{
    c->pid = pid;
    c->out_fd = p->out[0];
    c->err_fd = p->err[0];
    c->prog_fd = p->fd3[0];
    p->out[0] = p->err[0] = p->fd3[0] = -1; /* now the caller's */
}

int enc_spawn(char *const argv[], const char *dir, bool want_out, bool want_err, bool want_fd3,
              enc_child *c)
{
    pipes p;
    c->pid = -1;
    c->out_fd = c->err_fd = c->prog_fd = -1;
    int rc = pipes_open(&p, want_out, want_err, want_fd3);
    if (rc)
        return rc;
    pid_t parent = getpid(), pid = fork();
    if (pid == 0)
        child(argv, dir, &p, parent);
    if (pid < 0) {
        rc = errno;
        goto done;
    }
    setpgid(pid, pid); /* also here: a kill may come before the child runs */
    close_fd(&p.exec[1]);
    rc = exec_status(p.exec[0]);
    if (rc) {
        waitpid(pid, NULL, 0);
        goto done;
    }
    child_init(c, &p, pid);
done:
    pipes_close(&p);
    return rc;
}

void enc_child_close(enc_child *c)
{
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    close_fd(&c->prog_fd);
}

/* Reads what is there into *buf (grown up to cap); false at EOF or error. */
static bool read_some(int fd, char **buf, size_t *len, size_t cap)
{
    char tmp[4096];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (r <= 0)
        return false;
    size_t keep = *len + (size_t)r > cap ? cap - *len : (size_t)r;
    char *nb = realloc(*buf, *len + keep + 1);
    if (!nb)
        return false;
    memcpy(nb + *len, tmp, keep);
    *len += keep;
    nb[*len] = '\0';
    *buf = nb;
    return true;
}

static int reap(pid_t pid, bool kill_first)
{
    int status = 0;
    if (kill_first)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

int enc_run_capture(char *const argv[], const char *dir, size_t cap, int timeout_ms, char **out)
{
    enc_child c;
    char *buf = calloc(1, 1);
    size_t len = 0;
    *out = NULL;
    if (!buf || enc_spawn(argv, dir, true, false, false, &c) != 0) {
        free(buf);
        return -1;
    }
    int64_t end = enc_mono_ms() + timeout_ms;
    bool open = true;
    while (open && enc_mono_ms() < end) {
        struct pollfd pfd = {.fd = c.out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) > 0)
            open = read_some(c.out_fd, &buf, &len, cap);
    }
    enc_child_close(&c);
    int status = reap(c.pid, open); /* still open: timed out */
    if (open || !WIFEXITED(status)) {
        free(buf);
        return -1;
    }
    *out = buf;
    return WEXITSTATUS(status);
}
