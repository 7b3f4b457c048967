/*
 * What bin/migrate shows the user, kept pure so it can be unit-tested: Go's
 * duration format (golang-migrate prints "1/u init (12.345678ms)"), the line
 * and column of a PostgreSQL error position, and removal of the database
 * password from any message before it is printed. Stateless.
 */
#include "migrate.h"

#include "we_buf.h"

#include <stdio.h>
#include <string.h>

/* ---- durations ---------------------------------------------------------- */

/* v in units of `unit` with up to `digits` fraction digits, trailing zeros
 * dropped, as Go's fmtFrac does. */
static void fmt_unit(we_buf *b, int64_t v, int64_t unit, int digits, const char *suffix)
{
    int64_t whole = v / unit, frac = v % unit;
    if (frac == 0) {
        we_buf_printf(b, "%lld%s", (long long)whole, suffix);
        return;
    }
    char f[16];
    snprintf(f, sizeof f, "%0*lld", digits, (long long)frac);
    size_t n = strlen(f);
    while (n > 0 && f[n - 1] == '0')
        n--;
    we_buf_printf(b, "%lld.%.*s%s", (long long)whole, (int)n, f, suffix);
}

void mig_fmt_duration(char *buf, size_t n, int64_t ns)
{
    const int64_t us = 1000, ms = 1000 * us, s = 1000 * ms, min = 60 * s, h = 60 * min;
    we_buf b;
    we_buf_init(&b);
    if (ns <= 0)
        we_buf_adds(&b, "0s");
    else if (ns < us)
        we_buf_printf(&b, "%lldns", (long long)ns);
    else if (ns < ms)
        fmt_unit(&b, ns, us, 3, "\xC2\xB5s");
    else if (ns < s)
        fmt_unit(&b, ns, ms, 6, "ms");
    else {
        if (ns >= h)
            we_buf_printf(&b, "%lldh", (long long)(ns / h));
        if (ns >= min)
            we_buf_printf(&b, "%lldm", (long long)(ns % h / min));
        fmt_unit(&b, ns % min, s, 9, "s");
    }
    snprintf(buf, n, "%s", b.data);
    we_buf_fini(&b);
}

/* ---- error positions ---------------------------------------------------- */

bool mig_sql_line_col(const char *sql, long pos, int *line, int *col)
{
    int ln = 1, cl = 1;
    long ch = 1;
    if (pos < 1)
        return false;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue; /* UTF-8 continuation: PostgreSQL counts characters */
        if (ch == pos)
            break;
        if (*p == '\n') {
            ln++;
            cl = 1;
        } else {
            cl++;
        }
        ch++;
    }
    if (ch != pos) /* one past the end is "at end of input", still valid */
        return false;
    *line = ln;
    *col = cl;
    return true;
}

/* ---- redaction ---------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static void replace_all(char *msg, size_t cap, const char *needle)
{
    size_t nlen = strlen(needle);
    if (nlen == 0 || !strstr(msg, needle))
        return;
    we_buf b;
    we_buf_init(&b);
    const char *p = msg, *hit;
    while ((hit = strstr(p, needle)) != NULL) {
        we_buf_add(&b, p, (size_t)(hit - p));
        we_buf_adds(&b, "xxxxx");
        p = hit + nlen;
    }
    we_buf_adds(&b, p);
    snprintf(msg, cap, "%s", b.data);
    we_buf_fini(&b);
}

static void redact_secret(char *msg, size_t cap, const char *start, size_t len)
{
    char secret[1024];
    if (len == 0 || len >= sizeof secret)
        return;
    memcpy(secret, start, len);
    secret[len] = '\0';
    replace_all(msg, cap, secret);
    percent_decode(secret);
    replace_all(msg, cap, secret);
}

/* user:PASSWORD@host: the password is in the authority, before the last '@'. */
static void redact_userinfo(char *msg, size_t cap, const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon)
        redact_secret(msg, cap, colon + 1, (size_t)(at - colon - 1));
}

static void redact_query(char *msg, size_t cap, const char *url)
{
    const char *q = strchr(url, '?');
    while (q) {
        q++;
        if (strncmp(q, "password=", 9) == 0)
            redact_secret(msg, cap, q + 9, strcspn(q + 9, "&#"));
        q = strchr(q, '&');
    }
}

void mig_redact(char *msg, size_t cap, const char *url)
{
    if (!url || !msg)
        return;
    redact_userinfo(msg, cap, url);
    redact_query(msg, cap, url);
}
