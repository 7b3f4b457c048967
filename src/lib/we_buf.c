/*
 * Growable buffer and JSON string escaping. No shared state.
 */
#include "we_buf.h"
#include "we_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void we_buf_init(we_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void we_buf_fini(we_buf *b)
{
    free(b->data);
    we_buf_init(b);
}

void we_buf_reset(we_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static void reserve(we_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort(); /* not WE_ASSERT: the logger itself uses this buffer */
    b->data = p;
    b->cap = cap;
}

void we_buf_add(we_buf *b, const void *p, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void we_buf_adds(we_buf *b, const char *s)
{
    we_buf_add(b, s, strlen(s));
}

void we_buf_addc(we_buf *b, char c)
{
    we_buf_add(b, &c, 1);
}

void we_buf_vprintf(we_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    WE_ASSERT(n >= 0);
    reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void we_buf_printf(we_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    we_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (s[0] == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (s[0] == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (s[0] == 0xF0 && s[1] < 0x90)
            return 0;
        if (s[0] == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

void we_buf_add_json_str(we_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    we_buf_addc(b, '"');
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            we_buf_addc(b, '\\');
            we_buf_addc(b, (char)c);
            p++;
        } else if (c == '\n') {
            we_buf_adds(b, "\\n");
            p++;
        } else if (c == '\r') {
            we_buf_adds(b, "\\r");
            p++;
        } else if (c == '\t') {
            we_buf_adds(b, "\\t");
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            we_buf_printf(b, "\\u%04x", c);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                we_buf_adds(b, "\\ufffd");
                p++;
            } else {
                we_buf_add(b, p, n);
                p += n;
            }
        }
    }
    we_buf_addc(b, '"');
}

char *we_buf_steal(we_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = strdup("");
        WE_ASSERT(p != NULL);
    }
    we_buf_init(b);
    return p;
}
