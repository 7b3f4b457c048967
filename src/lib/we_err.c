/*
 * Error struct helpers and the always-on assertion. Stateless; safe from any
 * thread.
 */
#include "we_err.h"
#include "we_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int we_err_set(we_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *we_err_msg(const we_err *err)
{
    return err ? err->msg : "";
}

void we_assert_fail(const char *what, const char *file, int line)
{
    we_fatal("assertion failed", WE_ERR(what), WE_S("file", file), WE_I("line", line));
    abort();
}
