/*
 * Errors shared by every binary. Functions return 0 or a negative error code
 * (WE_E*), and put one sentence naming the failing object into an optional
 * caller-supplied we_err. Library code returns errors; the caller that handles
 * one logs it, once.
 */
#ifndef WE_ERR_H
#define WE_ERR_H

#include <stddef.h>

enum {
    WE_OK = 0,
    WE_EINVAL = -1,   /* bad input: the caller's fault */
    WE_ENOENT = -2,   /* no such object */
    WE_EIO = -3,      /* a dependency (DB, NATS, disk, process) failed */
    WE_ENOMEM = -4,
    WE_ESTATE = -5,   /* operation not allowed in the current state */
    WE_ETIMEOUT = -6,
    WE_EEXIST = -7,
    WE_EUNAVAIL = -8, /* a dependency is unreachable right now (retry later) */
};

typedef struct we_err {
    char msg[512];
} we_err;

/* Formats into err (when not NULL) and returns code, so callers can write
 * `return we_err_set(err, WE_EINVAL, "PORT: %s is not a number", v);`. */
int we_err_set(we_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message of err, or "" for NULL / no message. */
const char *we_err_msg(const we_err *err);

/* Aborts with file and line when cond is false; stays on in release builds. */
#define WE_ASSERT(cond)                                                                            \
    ((cond) ? (void)0 : we_assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void we_assert_fail(const char *what, const char *file, int line);

#endif
