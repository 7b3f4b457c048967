/*
 * A growable byte buffer, always NUL-terminated. Used to build log lines,
 * metrics text and response bodies. Caller's storage: we_buf_init/we_buf_fini.
 * Allocation failure aborts (there is no sane recovery in this code base).
 */
#ifndef WE_BUF_H
#define WE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct we_buf {
    char *data;
    size_t len;
    size_t cap;
} we_buf;

void we_buf_init(we_buf *b);
void we_buf_fini(we_buf *b);
void we_buf_reset(we_buf *b);
void we_buf_add(we_buf *b, const void *p, size_t n);
void we_buf_adds(we_buf *b, const char *s);
void we_buf_addc(we_buf *b, char c);
void we_buf_printf(we_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void we_buf_vprintf(we_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included; invalid UTF-8 bytes
 * become U+FFFD so the output is always valid JSON. */
void we_buf_add_json_str(we_buf *b, const char *s);
/* Hands the heap string to the caller (free() it) and leaves b empty. */
char *we_buf_steal(we_buf *b);

#endif
