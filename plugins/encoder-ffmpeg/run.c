/*
 * One ffmpeg run under a plugin call, shared by encoder.transcode,
 * encoder.stitch and encoder.package: start, progress, cancellation, and an error the kernel
 * can act on.
 *
 * Design: ffmpeg is started directly (spawn.c: own process group, no
 * shell) with `-progress pipe:3`, so its key=value progress arrives on a
 * pipe of its own while stderr (at -loglevel warning) goes to a 4 KiB ring
 * for error messages. The call's thread polls both pipes with a 100 ms
 * timeout — no busy-waiting, and a cancellation is seen within 0.1 s. Each
 * completed progress block may become a $/progress notification, at most one
 * per 250 ms; percent never goes down and stays at or below 99.9 until ffmpeg
 * exits 0, which sends a final 100 just before the result.
 *
 * Cancellation ($/cancel, the deadline, or the plugin shutting down): SIGTERM
 * to the process group, SIGKILL after kill_grace_ms (at most 1000), reap, and
 * delete the partial output; the call fails with -32800 (the SDK turns it
 * into -32002 when the deadline was the cause). A failed run's output is
 * deleted too: a half-written file must never look like a result. Exit
 * classification is in classify.c.
 *
 * Threads: runs on an SDK pool thread; everything here belongs to the call.
 */
#include "encoder.h"

#include "webencode/plugin.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_MS 100
#define EMIT_EVERY_MS 250

typedef struct run {
    we_plugin_call *call;
    enc_child child;
    enc_progress prog;
    enc_tail tail;
    int grace_ms;
    int64_t started_ms, last_emit_ms, term_ms; /* term_ms: SIGTERM sent at; 0 none */
    bool sigkilled, reaped;
    int status;
} run;

/* ---- before the run ------------------------------------------------------------ */

/* mkdir -p of path's parent directory; 0 or an errno value. */
static int make_parent(const char *path)
{
    char *dir = strdup(path);
    int rc = dir ? 0 : ENOMEM;
    for (char *p = dir ? dir + 1 : NULL; p && (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            rc = errno;
        *p = '/';
    }
    free(dir);
    return rc;
}

int enc_prepare_output(we_plugin_call *call, const char *path, bool overwrite)
{
    struct stat sb;
    if (!overwrite && stat(path, &sb) == 0)
        return we_plugin_fail(call, "WE-JOB-012", false, "output %s exists and overwrite is false",
                              path);
    int rc = make_parent(path);
    if (rc)
        return we_plugin_fail(call, "WE-JOB-011", true, "cannot create the directory of %s: %s",
                              path, strerror(rc));
    return 0;
}

/* ---- the run ------------------------------------------------------------------- */

static json_t *progress_json(const enc_progress_snap *s, double percent)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:I}", "percent",
                     (double)(int64_t)(percent * 10 + 0.5) / 10, "fps", enc_max(s->fps, 0), "speed",
                     enc_max(s->speed, 0), "out_time_s", enc_max(s->out_time_s, 0), "frame",
                     (json_int_t)(s->frame > 0 ? s->frame : 0));
}

/* Reads what fd has; false at EOF (the fd is closed then). */
static bool drain_fd(run *r, int *fd, bool progress)
{
    char buf[4096];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return false;
    }
    if (!progress) {
        enc_tail_add(&r->tail, buf, (size_t)n);
        return true;
    }
    int64_t now = enc_mono_ms();
    if (enc_progress_feed(&r->prog, buf, (size_t)n) > 0 && now - r->last_emit_ms >= EMIT_EVERY_MS) {
        r->last_emit_ms = now;
        we_plugin_progress(r->call, progress_json(&r->prog.last, r->prog.percent));
    }
    return true;
}

/* One poll round over the two pipes; waits up to ms. True if anything was read. */
static bool pump(run *r, int ms)
{
    struct pollfd pfd[2] = {{.fd = r->child.prog_fd, .events = POLLIN},
                            {.fd = r->child.err_fd, .events = POLLIN}};
    if (poll(pfd, 2, ms) <= 0)
        return false;
    if (pfd[0].revents)
        drain_fd(r, &r->child.prog_fd, true);
    if (pfd[1].revents)
        drain_fd(r, &r->child.err_fd, false);
    return true;
}

/* SIGTERM on cancellation, SIGKILL once the grace period is over. */
static void enforce_cancel(run *r)
{
    int64_t now = enc_mono_ms();
    if (!r->term_ms && we_plugin_cancelled(r->call)) {
        kill(-r->child.pid, SIGTERM);
        r->term_ms = now > 0 ? now : 1;
    }
    if (r->term_ms && !r->sigkilled && now - r->term_ms >= r->grace_ms) {
        kill(-r->child.pid, SIGKILL);
        r->sigkilled = true;
    }
}

/* Reaps ffmpeg once it has exited. Just before, while the zombie leader
 * still holds the group id (so it cannot name someone else's group), the
 * group is killed: nothing ffmpeg started outlives it. */
static void try_reap(run *r)
{
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)r->child.pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno == ECHILD) { /* cannot happen unless SIGCHLD is ignored: status unknown */
            r->status = 255 << 8;
            r->reaped = true;
        }
        return;
    }
    if (si.si_pid == 0)
        return; /* still running */
    kill(-r->child.pid, SIGKILL);
    while (waitpid(r->child.pid, &r->status, 0) < 0 && errno == EINTR)
        ;
    r->reaped = true;
}

/* Until ffmpeg has exited and been reaped; then what is left in the pipes. */
static void supervise(run *r)
{
    while (!r->reaped) {
        bool open = r->child.prog_fd >= 0 || r->child.err_fd >= 0;
        pump(r, open ? POLL_MS : 10);
        enforce_cancel(r);
        try_reap(r);
    }
    while ((r->child.prog_fd >= 0 || r->child.err_fd >= 0) && pump(r, 0))
        ;
    enc_child_close(&r->child);
}

/* ---- after the run --------------------------------------------------------------- */

/* The file a run produces: the output, or job->result when the output is
 * a pattern (encoder.package's "%v"). */
static const char *made(const enc_job *job)
{
    return job->result ? job->result : job->output;
}

static int succeed(run *r, const enc_job *job, enc_run_stats *out)
{
    struct stat sb;
    if (stat(made(job), &sb) < 0 || sb.st_size == 0) {
        unlink(made(job));
        return we_plugin_fail(r->call, "WE-JOB-011", true,
                              "ffmpeg exited 0 but the output %s is missing or empty", made(job));
    }
    const enc_progress_snap *s = &r->prog.last;
    out->elapsed_s = (double)(enc_mono_ms() - r->started_ms) / 1000.0;
    out->out_time_s = enc_max(s->out_time_s, 0);
    out->speed = s->speed > 0 ? s->speed : (out->elapsed_s > 0 ? out->out_time_s / out->elapsed_s : 0);
    out->frames = s->frame > 0 ? s->frame : 0;
    out->size_bytes = (int64_t)sb.st_size;
    we_plugin_progress(r->call, progress_json(s, 100));
    return 0;
}

static int conclude(run *r, const enc_job *job, const char *what, enc_run_stats *out)
{
    if (r->term_ms) {
        unlink(made(job));
        return we_plugin_fail_code(r->call, WE_RPC_CANCELLED, "%s cancelled; ffmpeg stopped", what);
    }
    if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0)
        return succeed(r, job, out);
    /* a failed run leaves nothing that could pass for a result. (With
     * overwrite false a file created by someone else between our check and
     * ffmpeg's would go too; the kernel never races itself on one output.) */
    unlink(made(job));
    char text[ENC_TAIL_SIZE + 1];
    enc_verdict v;
    enc_tail_text(&r->tail, text);
    enc_classify(r->status, text, job->input, &v);
    if (enc_source_refused(r->call, job->source, v.reason) < 0)
        return -1; /* the egress proxy's reason beats FFmpeg's "403 Forbidden" */
    return we_plugin_fail(r->call, v.we_code, v.retryable, "%s", v.reason);
}

static int start(run *r, const enc_state *st, const enc_job *job)
{
    char **argv = enc_argv_build(job);
    if (!argv)
        return we_plugin_fail_code(r->call, WE_RPC_INTERNAL, "out of memory");
    int rc = enc_spawn(argv, st->work_dir, false, true, true, &r->child);
    free(argv);
    if (rc)
        return we_plugin_fail(r->call, "WE-JOB-011", true, "cannot start %s: %s", st->ffmpeg_path,
                              strerror(rc));
    r->started_ms = enc_mono_ms();
    we_plugin_log("debug", "ffmpeg started",
                  json_pack("{s:i, s:s}", "pid", (int)r->child.pid, "output", job->output));
    return 0;
}

int enc_run(we_plugin_call *call, const enc_job *job, double expected_s, const char *what,
            enc_run_stats *out)
{
    const enc_state *st = we_plugin_state(call);
    run r = {.call = call, .grace_ms = st->kill_grace_ms};
    memset(out, 0, sizeof *out);
    enc_progress_init(&r.prog, expected_s);
    enc_tail_init(&r.tail);
    if (!st->ffmpeg_path)
        return we_plugin_fail(call, "WE-JOB-011", true, "ffmpeg not found: %s", st->ffmpeg);
    if (we_plugin_cancelled(call))
        return we_plugin_fail_code(call, WE_RPC_CANCELLED, "%s cancelled before it started", what);
    if (start(&r, st, job) < 0)
        return -1;
    supervise(&r);
    return conclude(&r, job, what, out);
}
