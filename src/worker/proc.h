/*
 * Runs a helper program (FFmpeg probes) without a shell and collects its
 * output, with a deadline.
 */
#ifndef WK_PROC_H
#define WK_PROC_H

#include "we_buf.h"
#include "we_err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct wk_proc_opts {
    int timeout_ms;   /* the child is killed (SIGKILL) after this long */
    size_t max_out;   /* bytes of output kept; the rest is read and dropped */
    bool with_stderr; /* collect stderr too (else it goes to /dev/null) */
} wk_proc_opts;

/* Runs argv (argv[0] looked up in PATH) with stdin on /dev/null, appending its
 * stdout to out (may be NULL) and putting its exit code in *exit_code (-1 when
 * a signal ended it). Returns 0 once the child has exited, WE_ENOENT when the
 * program does not exist, WE_ETIMEOUT after the deadline, WE_ESTATE when a
 * stop was requested (we_stopping), WE_EIO otherwise; the child is always
 * reaped before return. */
int wk_proc_run(char *const argv[], const wk_proc_opts *o, we_buf *out, int *exit_code,
                we_err *err);

#endif
