/*
 * encoder.transcode: one ffmpeg run, with progress, cancellation and an
 * error the kernel can act on.
 *
 * Params: input (path or URL), output (a local path; parent directories are
 * created; relative paths resolve against work_dir), args (output options),
 * input_args (options before -i), duration_s (expected output length for
 * percent; else from -t/-ss and the input's duration), overwrite (default
 * true). Result: output, size_bytes, duration_s, frames, elapsed_s, speed.
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
 * deleted too: a half-written segment must never look like a result.
 * Exit classification is in classify.c.
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

typedef struct tparams {
    const char *input;
    char *output; /* resolved against work_dir; owned */
    json_t *args, *input_args;
    double duration_s; /* <= 0: unknown */
    bool overwrite;
} tparams;

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

/* ---- params ------------------------------------------------------------------ */

static int string_field(we_plugin_call *call, json_t *params, const char *name, const char **out)
{
    json_t *v = json_object_get(params, name);
    *out = json_string_value(v);
    if (!v)
        return we_plugin_fail_params(call, "%s: missing (a string is required)", name);
    if (!*out || strlen(*out) != json_string_length(v))
        return we_plugin_fail_params(call, "%s: must be a string (without NUL bytes)", name);
    return 0;
}

static int array_field(we_plugin_call *call, json_t *params, const char *name, json_t **out)
{
    char why[256];
    *out = json_object_get(params, name);
    if (*out && json_is_null(*out))
        *out = NULL;
    if (enc_args_check(*out, name, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "%s", why);
    return 0;
}

static int optional_fields(we_plugin_call *call, json_t *params, tparams *p)
{
    json_t *d = json_object_get(params, "duration_s"), *o = json_object_get(params, "overwrite");
    if (d && !json_is_null(d) && (!json_is_number(d) || !(json_number_value(d) >= 0)))
        return we_plugin_fail_params(call, "duration_s: must be a number >= 0");
    if (o && !json_is_null(o) && !json_is_boolean(o))
        return we_plugin_fail_params(call, "overwrite: must be a boolean");
    p->duration_s = json_is_number(d) ? json_number_value(d) : -1;
    p->overwrite = json_is_boolean(o) ? json_is_true(o) : true;
    return 0;
}

static int parse_params(we_plugin_call *call, json_t *params, const enc_state *st, tparams *p)
{
    const char *output;
    char why[256];
    if (string_field(call, params, "input", &p->input) < 0 ||
        string_field(call, params, "output", &output) < 0 ||
        array_field(call, params, "args", &p->args) < 0 ||
        array_field(call, params, "input_args", &p->input_args) < 0 ||
        optional_fields(call, params, p) < 0)
        return -1;
    if (enc_input_check(p->input, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "input: %s", why);
    if (enc_output_check(output, why, sizeof why) < 0)
        return we_plugin_fail_params(call, "output: %s", why);
    p->output = enc_resolve(st->work_dir, output);
    return p->output ? 0 : we_plugin_fail_code(call, WE_RPC_INTERNAL, "out of memory");
}

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

static int prepare_output(we_plugin_call *call, const tparams *p)
{
    struct stat sb;
    if (!p->overwrite && stat(p->output, &sb) == 0)
        return we_plugin_fail(call, "WE-JOB-012", false, "output %s exists and overwrite is false",
                              p->output);
    int rc = make_parent(p->output);
    if (rc)
        return we_plugin_fail(call, "WE-JOB-011", true, "cannot create the directory of %s: %s",
                              p->output, strerror(rc));
    return 0;
}

/* Expected output duration for percent: given, or from -t/-ss and the input. */
static double expected_duration(we_plugin_call *call, const enc_state *st, const tparams *p)
{
    if (p->duration_s > 0)
        return p->duration_s;
    double d = enc_expected_duration(p->input_args, p->args, -1);
    if (d > 0 || enc_args_value(p->input_args, "-f"))
        return d; /* with -f the input is not a file libavformat can open plainly */
    char *url = enc_resolve(st->work_dir, p->input);
    double in = url ? enc_probe_duration(call, url) : -1;
    free(url);
    return enc_expected_duration(p->input_args, p->args, in);
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

static int succeed(run *r, const tparams *p, json_t **result)
{
    struct stat sb;
    if (stat(p->output, &sb) < 0 || sb.st_size == 0) {
        unlink(p->output);
        return we_plugin_fail(r->call, "WE-JOB-011", true,
                              "ffmpeg exited 0 but the output %s is missing or empty", p->output);
    }
    const enc_progress_snap *s = &r->prog.last;
    double elapsed = (double)(enc_mono_ms() - r->started_ms) / 1000.0;
    double out_s = enc_max(s->out_time_s, 0);
    double speed = s->speed > 0 ? s->speed : (elapsed > 0 ? out_s / elapsed : 0);
    we_plugin_progress(r->call, progress_json(s, 100));
    *result =
        json_pack("{s:s, s:I, s:f, s:I, s:f, s:f}", "output", p->output, "size_bytes",
                  (json_int_t)sb.st_size, "duration_s", out_s, "frames",
                  (json_int_t)(s->frame > 0 ? s->frame : 0), "elapsed_s", elapsed, "speed", speed);
    return 0;
}

static int conclude(run *r, const tparams *p, json_t **result)
{
    if (r->term_ms) {
        unlink(p->output);
        return we_plugin_fail_code(r->call, WE_RPC_CANCELLED,
                                   "transcode cancelled; ffmpeg stopped");
    }
    if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0)
        return succeed(r, p, result);
    /* a failed run leaves nothing that could pass for a result. (With
     * overwrite false a file created by someone else between our check and
     * ffmpeg's would go too; the kernel never races itself on one output.) */
    unlink(p->output);
    char text[ENC_TAIL_SIZE + 1];
    enc_verdict v;
    enc_tail_text(&r->tail, text);
    enc_classify(r->status, text, p->input, &v);
    return we_plugin_fail(r->call, v.we_code, v.retryable, "%s", v.reason);
}

static int start(run *r, const enc_state *st, const tparams *p)
{
    enc_job job = {.ffmpeg = st->ffmpeg_path,
                   .input = p->input,
                   .output = p->output,
                   .input_args = p->input_args,
                   .args = p->args,
                   .overwrite = p->overwrite};
    char **argv = enc_argv_build(&job);
    if (!argv)
        return we_plugin_fail_code(r->call, WE_RPC_INTERNAL, "out of memory");
    int rc = enc_spawn(argv, st->work_dir, false, true, true, &r->child);
    free(argv);
    if (rc)
        return we_plugin_fail(r->call, "WE-JOB-011", true, "cannot start %s: %s", st->ffmpeg_path,
                              strerror(rc));
    r->started_ms = enc_mono_ms();
    we_plugin_log("debug", "ffmpeg started",
                  json_pack("{s:i, s:s}", "pid", (int)r->child.pid, "output", p->output));
    return 0;
}

int enc_method_transcode(we_plugin_call *call, json_t *params, json_t **result)
{
    enc_state *st = we_plugin_state(call);
    tparams p = {0};
    run r = {.call = call, .grace_ms = st->kill_grace_ms};
    int rc = parse_params(call, params, st, &p);
    if (rc == 0 && !st->ffmpeg_path)
        rc = we_plugin_fail(call, "WE-JOB-011", true, "ffmpeg not found: %s", st->ffmpeg);
    if (rc == 0)
        rc = prepare_output(call, &p);
    if (rc == 0)
        enc_progress_init(&r.prog, expected_duration(call, st, &p));
    if (rc == 0 && we_plugin_cancelled(call))
        rc = we_plugin_fail_code(call, WE_RPC_CANCELLED, "transcode cancelled before it started");
    enc_tail_init(&r.tail);
    if (rc == 0 && (rc = start(&r, st, &p)) == 0) {
        supervise(&r);
        rc = conclude(&r, &p, result);
    }
    free(p.output);
    return rc;
}
